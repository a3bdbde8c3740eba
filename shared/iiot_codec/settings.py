"""The boards' settings: names, defaults and ranges, and which ones can be sent down.

One table for everything that reads or checks a node's configuration: the firmware's
config.json loader (shared/config.py), tools/make_config.py, the simulator and the bridge,
which checks a setting sent from MQTT against the same range the node would apply. Kept as
tuples: the board loads it at boot and drops it once the configuration is read.

Row: name, default, kind, low, high. Kinds: "i" integer, "n" number, "i?"/"n?" the same or
null, "b" boolean, "s" one of the strings in low, "k" key(s), checked when parsed.
"""

if False:  # type checkers only: MicroPython has no typing module (this compiles to nothing)
    from typing import Any

SETTINGS: "tuple[tuple[str, Any, str, Any, Any], ...]" = (
    ("node_id", 1, "i", 1, 255),
    ("gateway_id", 2, "i", 0, 255),
    # node1: the gateway to try when gateway_id stayed silent for failover_rounds rounds
    ("backup_gateway_id", 0, "i", 0, 255),
    ("failover_rounds", 3, "i", 1, 1000),
    ("interval_s", 10, "n", 1, 86400),
    ("interval_ms", None, "i?", 50, 86400000),
    ("key", None, "k", 0, 0),
    ("keys", {}, "k", 0, 0),
    ("duty_cycle_pct", None, "n?", 0.001, 100),
    ("max_retries", 3, "i", 0, 10),
    ("stats_interval_s", 60, "n", 1, 86400),
    ("queue_len", 360, "i", 1, 2000),
    # node1: readings per frame when a queue drains (1: one reading per frame)
    ("batch_max", 8, "i", 1, 16),
    ("ack_turnaround_ms", 150, "i", 0, 10000),
    ("fcnt_reserve", 1024, "i", 1, 16384),
    ("wdt_ms", 16000, "i", 1000, 32000),
    # node2: bytes of lines kept until the host has them (a line of one reading takes 34);
    # while it is full, node2 tells the nodes to hold their readings
    ("ring_bytes", 8192, "i", 300, 65536),
    ("resend_ms", 3000, "i", 100, 600000),
    # node2: the retry hint (seconds) in the ACK that tells a node to hold its readings
    ("hold_retry_s", 20, "i", 1, 3600),
    ("radio_retry_s", 30, "n", 1, 3600),
    ("bme680_addr", 0x77, "i", 0x76, 0x77),
    ("display", True, "b", 0, 0),
)
RADIO_SETTINGS: "tuple[tuple[str, Any, str, Any, Any], ...]" = (
    ("freq_khz", 915000, "n", 137000, 1020000),
    ("sf", 7, "i", 7, 12),
    (
        "bw",
        "125",
        "s",
        ("7.8", "10.4", "15.6", "20.8", "31.25", "41.7", "62.5", "125", "250", "500"),
        0,
    ),
    ("coding_rate", 5, "i", 5, 8),
    # The driver maps 20 dBm on PA_BOOST to about 10 dBm: stay at 17 or below.
    ("output_power", 14, "i", -4, 17),
    ("preamble_len", 12, "i", 6, 65535),
    ("crc_en", True, "b", 0, 0),
    ("syncword", 0x12, "i", 0, 255),
    ("tx_ant", "PA_BOOST", "s", ("PA_BOOST", "RFO"), 0),
)

# Settings a node accepts over the air, in an ACK option: (tag, setting name). Whole
# numbers only, within the setting's range above. Tags are on-air identifiers: never reuse
# one, only add (a node skips tags it does not know).
DOWNLINK: "tuple[tuple[int, str], ...]" = ((1, "interval_s"),)
