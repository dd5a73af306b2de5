# One image for every Parley service; the command picks the service (`parley serve NAME`).
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
COPY models ./models
RUN pip install --no-cache-dir .

ENV PARLEY_HOST=0.0.0.0 \
    PARLEY_MODELS_DIR=/app/models
USER nobody
ENTRYPOINT ["parley"]
CMD ["serve", "ingestion"]
