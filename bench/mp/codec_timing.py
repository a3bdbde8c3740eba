"""Codec timing loop, run inside the MicroPython unix port (and by CPython, for parity).

Usage: micropython codec_timing.py ITERATIONS
Prints one JSON object: microseconds per call for each operation.
"""

import json
import sys

import iiot_codec

try:
    from time import ticks_diff, ticks_us
except ImportError:  # CPython
    from time import perf_counter_ns

    def ticks_us():
        return perf_counter_ns() // 1000

    def ticks_diff(a, b):
        return a - b


READINGS = {
    "temperature": 23.45,
    "humidity": 45.67,
    "pressure": 1013.25,
    "gas_resistance": 123456,
    "voltage": 3.301,
}
KEY = bytes(range(16))


def per_call_us(fn, iterations):
    fn()  # warm up: first-call allocations and lazy imports out of the timed loop
    start = ticks_us()
    for _ in range(iterations):
        fn()
    return ticks_diff(ticks_us(), start) / iterations


def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    encode = iiot_codec.encode_telemetry
    decode = iiot_codec.decode
    plain = encode(1, 4242, READINGS)
    signed = encode(1, 4242, READINGS, key=KEY)
    out = {
        "iterations": iterations,
        "encode_us": per_call_us(lambda: encode(1, 4242, READINGS), iterations),
        "encode_mic_us": per_call_us(lambda: encode(1, 4242, READINGS, key=KEY), iterations),
        "decode_us": per_call_us(lambda: decode(plain), iterations),
        "decode_mic_us": per_call_us(lambda: decode(signed, key=KEY, last_fcnt=4241), iterations),
    }
    print(json.dumps(out))


main()
