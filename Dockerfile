# One image for every app service: web (gunicorn), worker and beat (celery), migrate (one-shot).
# nginx, in front of web, is the official nginx image (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/app/var

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so code changes do not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# Editable, so settings' BASE_DIR stays /app (templates/, static/, manage.py live here).
RUN pip install --no-deps -e .

# Static files are baked into the image, each with a gzip and a brotli copy (WhiteNoise, with the
# Brotli package) that WhiteNoise serves to browsers that accept them. Settings refuse to load
# without a real SECRET_KEY when DEBUG is off, so the build uses a throwaway one; the real key
# comes from the environment.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" DEBUG=false \
        python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /app/var

# The mount points of compose's named volumes (CVs, media, beat's schedule) exist here, owned by
# app: a new volume takes its owner from the image, so the app can write to it.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app/var/private /app/var/media /app/var/beat \
    && chown -R app:app /app/var
USER app

EXPOSE 8000
CMD ["gunicorn", "jobboard.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-"]
