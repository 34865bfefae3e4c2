# gradwalk: Stage 1 builds the front-end assets with Node; stage 2 is a slim Python with the CPU torch wheel.
#
# The image runs as the unprivileged user `gradwalk` and in sandbox_mode=strict, which refuses to start
# without every sandbox protection. Giving each run a uid of its own needs root, namespaces need
# CAP_SYS_ADMIN and a seccomp profile that allows unshare/mount/pivot_root (see README, "Sandbox"):
# those privileges are granted by whoever deploys, explicitly, never baked in:
#   docker build -t gradwalk .
#   docker run -p 8000:8000 --user root --cap-add SYS_ADMIN \
#     --security-opt seccomp=unconfined --security-opt apparmor=unconfined gradwalk
# (deploy/compose.yaml does the same). Without them the container exits at start, saying which
# protection is missing, rather than run untrusted programs with less isolation than promised.

FROM node:20-bookworm-slim AS frontend
WORKDIR /src
COPY frontend/package.json frontend/package-lock.json frontend/
RUN cd frontend && npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ frontend/
COPY static/ static/
RUN cd frontend && npm run build


FROM python:3.11-slim-bookworm AS app
# The CPU build of torch: the default wheel on PyPI pulls in CUDA, gigabytes the sandbox never uses.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0+cpu
# g++ builds the tracer's C++ part (app/tracer/native.cpp) against that torch.
RUN apt-get update -q && apt-get install -y -q --no-install-recommends g++ && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/gradwalk
# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py && pip install . && pip uninstall -y gradwalk && rm -rf app build
COPY app/ app/
COPY templates/ templates/
COPY static/ static/
COPY alembic.ini ./
COPY --from=frontend /src/static/dist/ static/dist/
# Editable, so that templates/ and static/ beside app/ are found where the code expects them.
COPY scripts/build_native.py scripts/
RUN python scripts/build_native.py \
 && pip install --no-deps -e . \
 && useradd --system --uid 10001 --home-dir /srv/gradwalk --shell /usr/sbin/nologin gradwalk \
 && mkdir -p /var/lib/gradwalk && chown gradwalk:gradwalk /var/lib/gradwalk

# No GRADWALK_FORWARDED_ALLOW_IPS: a container reached directly believes no X-Forwarded-For. Behind a
# proxy, trust that proxy (deploy/compose.yaml does), and set GRADWALK_PUBLIC_URL and GRADWALK_ALLOWED_HOSTS.
ENV GRADWALK_SANDBOX_MODE=strict \
    GRADWALK_DATA_DIR=/var/lib/gradwalk
USER gradwalk
VOLUME /var/lib/gradwalk
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4).status != 200)"
CMD ["gradwalk", "serve", "--host", "0.0.0.0", "--port", "8000"]
