# Test stand-in for micropython-lib's `lora` (SX1276 sync API), for the firmware's own
# smoke tests. FAKE_LORA: "absent" (constructor raises like the real driver without a
# chip), "autoack" (every frame asking for an ACK is ACKed by gateway 2) or "silent".
# FAKE_LORA_RX: a file of hex frames delivered by recv() in order. FAKE_LORA_TX: a file
# that gets the hex of every frame sent.
import os
import time

_MODE = os.getenv("FAKE_LORA") or "autoack"
_KEYS = ("freq_khz", "sf", "bw", "coding_rate", "implicit_header", "crc_en", "preamble_len",
         "output_power", "tx_ant", "syncword")  # fmt: skip


class RxPacket(bytearray):
    pass


class SX1276:
    def __init__(self, spi, cs, dio0=None, dio1=None, reset=None, lora_cfg=None, ant_sw=None):
        if _MODE == "absent":
            raise RuntimeError("Unexpected silicon version 0")
        self.crc_errors = 0
        self.cfg = {}
        self.inbox = []
        path = os.getenv("FAKE_LORA_RX")
        if path:
            with open(path) as f:
                self.inbox = [bytes.fromhex(x.strip()) for x in f if x.strip()]
        self.tx_path = os.getenv("FAKE_LORA_TX")
        if lora_cfg:
            self.configure(lora_cfg)

    def configure(self, lora_cfg):
        for k in lora_cfg:
            if k not in _KEYS:
                raise KeyError(k)
        self.cfg.update(lora_cfg)

    def get_time_on_air_us(self, n):
        return 1000 * (12 + 8 + n)  # close enough to SF7/125 kHz for a smoke test

    def standby(self):
        pass

    def sleep(self):
        pass

    def send(self, packet, tx_at_ms=None):
        if self.tx_path:
            with open(self.tx_path, "a") as f:
                f.write(bytes(packet).hex() + "\n")
        if _MODE == "autoack" and packet[0] & 0x08:  # ACK requested
            import iiot_codec

            fr = iiot_codec.decode(packet)
            self.inbox.append(iiot_codec.encode_ack(fr.dst or 2, fr.src, fr.seq))
        return time.ticks_ms()

    def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        if self.inbox:
            p = RxPacket(self.inbox.pop(0))
            p.rssi = -42
            p.snr = 30
            p.ticks_ms = time.ticks_ms()
            p.crc_error = False
            p.valid_crc = True
            return p
        time.sleep_ms(timeout_ms if timeout_ms and timeout_ms < 20 else 20)
        self.crc_errors += 1
        return None
