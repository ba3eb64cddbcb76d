"""The image detail shows what the image's Content Credentials say, and the decrypted
content carries exactly that, signed."""

from __future__ import annotations

from veilchain.platform.provenance import read_credentials


def test_image_detail_shows_the_credentials_the_content_carries(stack, dataset):
    c = stack.client
    ds, v = dataset["dataset_id"], dataset["version"]
    detail = c.get(f"/datasets/{ds}/versions/{v}/images/2").json()
    cred = detail["credentials"]
    identity = stack.service.credentials().identity
    assert cred["summary"].endswith(f"by {identity.institution}, anchored in data set {ds} v{v}")
    assert cred["signer_serial"] == identity.serial_hex and cred["anchor"]["image_index"] == 2
    listed = c.get(f"/datasets/{ds}/versions/{v}/images").json()["data"]
    assert [i["credentials"]["anchor"]["image_index"] for i in listed] == [0, 1, 2]
    r = c.post(f"/datasets/{ds}/grants", json={"grantee": stack.grantee.address},
               headers=stack.headers("institution"))  # fmt: skip
    assert r.status_code in (200, 201), r.text
    r = c.get(f"/datasets/{ds}/versions/{v}/images/2/content", headers=stack.headers("grantee"))
    assert r.status_code == 200, r.text
    ca = c.get("/.well-known/veilchain.json").json()["content_credentials"]["ca_certificate"]
    read = read_credentials(r.content, trust_pem=ca)
    assert read.state == "Trusted"
    assert read.summary(ds, v) == cred["summary"] and read.anchor == cred["anchor"]
