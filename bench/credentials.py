"""Content Credentials on the Ray driver: what signing adds per image where the driver, not
the worker, holds the signing key.

    python bench/credentials.py [--json] [--n 40]

With ``--executor ray`` the driver opens each image's data key, decrypts the image in memory,
signs it and encrypts it again (``platform/executors.py`` ``_signed``). This times that step
per 640x480 anonymized PNG (the sample photos as bench/anonymize.py crops them, blurred),
and, in the same run, signing alone and a decrypt + encrypt round without signing (the
baseline), so the cost of the credentials themselves is the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--n", type=int, default=40, help="images timed per measure")
    args = ap.parse_args(argv)

    import cv2
    from anonymize import photos_640x480

    from veilchain.anonymizer.image_io import encode_image
    from veilchain.config import Settings
    from veilchain.platform.executors import _signed
    from veilchain.platform.keys.envelope import decrypt_with_data_key, encrypt_with_data_key
    from veilchain.platform.keys.transport import EncryptedImage
    from veilchain.platform.provenance import Anchor, CredentialsSigner, load_signing_identity

    data_dir = Path(tempfile.mkdtemp(prefix="veilchain-bench-"))
    signer = CredentialsSigner(load_signing_identity(Settings(data_dir=data_dir, env="test")))
    pngs = [encode_image(cv2.GaussianBlur(p, (31, 31), 0), "png") for p in photos_640x480()]
    key = os.urandom(32)

    def sign(image_id: str, png: bytes) -> bytes:
        anchor = Anchor(chain_id=1337, contract="0x" + "11" * 20, registration="ab" * 16,
                        image_index=int(image_id), image_id=image_id)  # fmt: skip
        definition = signer.definition(
            method="blur", epsilon=None, model_hash="0x" + "00" * 32, anchor=anchor
        )
        return signer.sign_png(png, definition)

    items = [
        EncryptedImage(
            image_id=f"{i:06d}",
            ciphertext=encrypt_with_data_key(
                pngs[i % len(pngs)], key, dataset="u", image=f"{i:06d}"
            ),  # fmt: skip
            sealed_key=b"",
            anonymized_sha256="",
            report={},
            width=640,
            height=480,
        )  # fmt: skip
        for i in range(args.n)
    ]

    def baseline(item: EncryptedImage) -> bytes:
        png = decrypt_with_data_key(item.ciphertext, key, dataset="u", image=item.image_id)
        return encrypt_with_data_key(png, key, dataset="u", image=item.image_id)

    def timed(fn) -> float:
        fn(0)  # warm-up
        t0 = time.perf_counter()
        for i in range(args.n):
            fn(i)
        return 1000 * (time.perf_counter() - t0) / args.n

    load_before = [round(v, 2) for v in os.getloadavg()]
    base = timed(lambda i: baseline(items[i]))
    sign_only = timed(lambda i: sign(items[i].image_id, pngs[i % len(pngs)]))
    full = timed(lambda i: _signed("u", items[i], key, sign))
    result = {
        "command": " ".join(["python", "bench/credentials.py", *(argv or sys.argv[1:])]),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {sys.version.split()[0]}",
        "images": args.n,
        "png_bytes_mean": round(sum(map(len, pngs)) / len(pngs)),
        "baseline_decrypt_encrypt_ms": round(base, 2),
        "sign_only_ms": round(sign_only, 2),
        "driver_decrypt_sign_encrypt_ms": round(full, 2),
        "driver_images_per_s_one_core": round(1000 / full, 1),
        "load_avg_before": load_before,
        "load_avg_after": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(result, indent=2) if args.json else result)
    return result


if __name__ == "__main__":
    main()
