# The bridge image: `pip install .` of this repository, entry point `iiot-bridge`.
#   docker build -t iiot-bridge .                      # bridge only
#   docker build --build-arg EXTRAS=sim -t iiot-demo . # plus the simulator's MicroPython
# compose.yaml builds it for the `bridge` and `demo` profiles.
FROM python:3.11-slim-bookworm

# Optional extras of pyproject.toml, e.g. "sim" for the demo profile.
ARG EXTRAS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, unprivileged uid (compose's tmpfs for the demo pty uses it). dialout lets it open
# the serial device passed in from the host, whose node is group dialout (see the udev rule).
RUN groupadd --system --gid 10001 iiot \
    && useradd --system --uid 10001 --gid iiot --groups dialout \
       --home-dir /var/lib/iiot-bridge --create-home --shell /usr/sbin/nologin iiot

# Only what the package and the simulator need: never .env, .git or a local virtualenv.
WORKDIR /opt/iiot
COPY pyproject.toml README.md ./
COPY shared/ shared/
COPY bridge/ bridge/
COPY sim/ sim/
COPY node1/ node1/
COPY node2/ node2/
RUN pip install ".${EXTRAS:+[$EXTRAS]}"

USER iiot
# The outbox and other state: a volume in compose, so queued readings survive a rebuild.
ENV IIOT_STATE_DIR=/var/lib/iiot-bridge
# The simulator runs the firmware files copied above (a regular install does not carry them).
ENV IIOT_SIM_REPO=/opt/iiot
VOLUME ["/var/lib/iiot-bridge"]
WORKDIR /var/lib/iiot-bridge

ENTRYPOINT ["iiot-bridge"]
