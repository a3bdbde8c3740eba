#!/bin/sh
# Runs in the mosquitto container before the broker (compose.yaml sets it as the entrypoint).
# It builds the password file from the environment, which compose fills from .env, so a fresh
# `docker compose up` needs no manual mosquitto_passwd step and a password changed in .env
# takes effect on the next start. Then it runs the given command (the broker).
set -eu

config_dir="${MOSQUITTO_CONFIG_DIR:-/mosquitto/config}"
run_dir="${MOSQUITTO_RUN_DIR:-/mosquitto/run}"
data_dir="${MOSQUITTO_DATA_DIR:-/mosquitto/data}"
certs_dir="${MOSQUITTO_CERTS_DIR:-/mosquitto/certs}"

if [ -z "${MQTT_USERNAME:-}" ] || [ -z "${MQTT_PASSWORD:-}" ]; then
    echo "entrypoint: MQTT_USERNAME and MQTT_PASSWORD must be set (run 'make up' to create .env)" >&2
    exit 1
fi

# The password file holds hashes only, but keep it private all the same.
umask 077
mkdir -p "$run_dir/conf.d"
passwd_file="$run_dir/passwd"
rm -f "$passwd_file"
mosquitto_passwd -c -b "$passwd_file" "$MQTT_USERNAME" "$MQTT_PASSWORD" >/dev/null

case "${MQTT_TLS:-off}" in
    on | true | yes | 1)
        for f in ca.crt server.crt server.key; do
            if [ ! -r "$certs_dir/$f" ]; then
                echo "entrypoint: MQTT_TLS=on but $certs_dir/$f is missing (see MQTT_TLS_CERTS)" >&2
                exit 1
            fi
        done
        cp "$config_dir/tls.conf" "$run_dir/conf.d/tls.conf"
        echo "entrypoint: TLS listener on 8883 enabled"
        ;;
    *)
        rm -f "$run_dir/conf.d/tls.conf"
        ;;
esac

# The broker drops root for the mosquitto user, then reads these files and writes its data.
# (Done here instead of by the image's entrypoint, whose chown -R of all of /mosquitto trips
# over the read-only config and certificate mounts.)
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown -R mosquitto:mosquitto "$run_dir"
    if [ -d "$data_dir" ]; then chown -R mosquitto:mosquitto "$data_dir"; fi
fi

exec "$@"
