# fraudstream worker (and the `producer` load generator) as a container image.
#   docker build -t fraudstream .
#   docker run --rm -e FRAUDSTREAM_BROKER_URL=kafka://broker:9092 fraudstream
# Runtime dependencies only (no dev extras), as a non-root user.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fraudstream ./fraudstream
COPY producer ./producer
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin fraudstream \
    && mkdir -p /data && chown fraudstream:fraudstream /data
USER fraudstream
WORKDIR /home/fraudstream
# In a container the web server must listen on every interface; table state goes to /data.
ENV FRAUDSTREAM_WEB_HOST=0.0.0.0 \
    FRAUDSTREAM_DATA_DIR=/data
VOLUME ["/data"]
# /health (readiness) and /stats
EXPOSE 6066
CMD ["fraudstream", "worker"]
