# One image for every Parley service; the command picks the service (`parley serve NAME`).
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
COPY models ./models
RUN pip install --no-cache-dir .

# The code stays root-owned and read-only; the service runs as `nobody` in a working directory it owns, where
# the default adapter's `.parley/outbox.log` and the embedded Valkey's files go.
RUN mkdir /var/lib/parley && chown nobody:nogroup /var/lib/parley
WORKDIR /var/lib/parley
ENV PARLEY_HOST=0.0.0.0 \
    PARLEY_MODELS_DIR=/app/models
USER nobody
ENTRYPOINT ["parley"]
CMD ["serve", "ingestion"]
