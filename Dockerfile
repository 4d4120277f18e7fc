# scribe-exporter container image.
#   docker build -t scribe-exporter .
#   docker run -p 9877:9877 scribe-exporter --demo
# The runtime stage runs as a numeric non-root user and writes nothing outside /tmp, so it works
# with a read-only root filesystem.

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt
COPY exporter.py /app/exporter.py
COPY scribe_exporter /app/scribe_exporter
# Compile now: at run time the root filesystem may be read-only.
RUN python -m compileall -q /app /opt/venv

FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER 65534:65534
EXPOSE 9877
# For plain Docker; Kubernetes uses the chart's probes on /healthz and /readyz instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9877/healthz', timeout=4)"]
ENTRYPOINT ["python", "/app/exporter.py"]
CMD ["--config.file=/etc/scribe-exporter/config.yaml"]
