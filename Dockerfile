# syntax=docker/dockerfile:1
# aws-support-bot: `docker build -t aws-support-bot .` then see README "Deploy".

FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY templates ./templates
# The app and its runtime dependencies only (no dev extras), in a venv copied whole into the image.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.12-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=3000 \
    BOT_DB_PATH=/data/bot.sqlite
# Never root: a fixed UID so a mounted volume's ownership can be set from outside (chown 10001).
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /data bot \
    && mkdir /data && chown bot:bot /data
COPY --from=build /opt/venv /opt/venv
USER bot
WORKDIR /data
EXPOSE 3000
# 200 when the store answers and the workers are alive; urlopen raises on 503, so the check fails.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
CMD ["python", "-m", "bot", "serve"]
