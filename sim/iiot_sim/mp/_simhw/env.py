# The physical environment a simulated board sits in: the truth its sensors measure.
#
# Values drift slowly and plausibly (a daily-like sine plus a small random walk), seeded
# per node so runs repeat. IIOT_SIM_ENV (JSON) sets the starting values and "drift": 0
# freezes them; a control message {"op": "env", ...} changes them during a run.
# IIOT_SIM_TRUTH names a file that gets one line per sensor measurement with the truth
# the raw values were generated from, so tests can compare the firmware's readings.
import json
import math
import os
import time

from _simhw import control

_cfg = {}
try:
    _cfg = json.loads(os.getenv("IIOT_SIM_ENV") or "{}")
except ValueError:
    pass

base_t = float(_cfg.get("temperature", 22.5))
base_h = float(_cfg.get("humidity", 45.0))
base_p = float(_cfg.get("pressure", 1008.0))  # hPa
base_g = float(_cfg.get("gas", 120000.0))  # ohms
drift = bool(_cfg.get("drift", 1))
_period_s = float(_cfg.get("period_s", 600.0))
# Own generator (xorshift32): the firmware's `random` state must stay the firmware's.
_seed = int(os.getenv("IIOT_SIM_SEED") or "1") * 7919 + int(os.getenv("IIOT_SIM_NODE") or "0")
_state = [(_seed & 0xFFFFFFFF) or 1]


def rand():
    """Uniform in [0, 1)."""
    x = _state[0]
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    _state[0] = x
    return x / 4294967296.0


_phase = rand() * 6.283
_walk = [0.0, 0.0, 0.0, 0.0]
_t0 = time.ticks_ms()
_last = _t0
_truth_path = os.getenv("IIOT_SIM_TRUTH")


def _on_env(msg):
    global base_t, base_h, base_p, base_g, drift
    base_t = float(msg.get("temperature", base_t))
    base_h = float(msg.get("humidity", base_h))
    base_p = float(msg.get("pressure", base_p))
    base_g = float(msg.get("gas", base_g))
    if "drift" in msg:
        drift = bool(msg["drift"])
    for i in range(4):
        _walk[i] = 0.0


control.on("env", _on_env)


def _step():
    global _last
    now = time.ticks_ms()
    dt = time.ticks_diff(now, _last) / 1000.0
    _last = now
    if not drift or dt <= 0:
        return
    # Bounded random walk: each step pulls back towards 0 so values stay plausible.
    scale = math.sqrt(dt)
    _walk[0] = _walk[0] * 0.995 + (rand() - 0.5) * 0.02 * scale
    _walk[1] = _walk[1] * 0.995 + (rand() - 0.5) * 0.1 * scale
    _walk[2] = _walk[2] * 0.995 + (rand() - 0.5) * 0.05 * scale
    _walk[3] = _walk[3] * 0.99 + (rand() - 0.5) * 0.01 * scale


def truth():
    """(temperature C, humidity %RH, pressure hPa, gas ohms) now."""
    _step()
    if not drift:
        return base_t, base_h, base_p, base_g
    s = math.sin(time.ticks_diff(time.ticks_ms(), _t0) / 1000.0 * 6.283 / _period_s + _phase)
    t = base_t + 1.5 * s + _walk[0]
    h = base_h - 4.0 * s + _walk[1]
    h = 0.0 if h < 0.0 else (100.0 if h > 100.0 else h)
    p = base_p + 0.8 * s + _walk[2]
    g = base_g * (1.0 + 0.1 * s + _walk[3])
    return t, h, p, g


def log_truth(sensor, t, h, p, g):
    if not _truth_path:
        return
    try:
        with open(_truth_path, "a") as f:
            f.write("%s %d %.5f %.5f %.5f %.2f\n" % (sensor, time.ticks_ms(), t, h, p, g))
    except OSError:
        pass
