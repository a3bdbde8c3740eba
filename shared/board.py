# Pins and buses of both boards, in one place (docs/hardware.md has the wiring table):
# node1 and node2 are the same NUCLEO-F446RE with the same radio and I2C wiring.
#
# NUCLEO-F446RE: I2C(1) on PB8 (SCL, D15) / PB9 (SDA, D14); SPI(1) on PA5 / PA6 / PA7;
# the SX1276 module's NSS, RESET, DIO0 and DIO1 on the Arduino header. Each EXTI line
# serves one pin number, so DIO0 (PA10, line 10) and DIO1 (PB3, line 3) differ, and the
# user button B1 is PC13 (line 13).
from machine import I2C, SPI, Pin

I2C_ID = 1
I2C_SCL = "PB8"
I2C_SDA = "PB9"
I2C_FREQ = 400000

SPI_ID = 1  # SCK PA5, MISO PA6, MOSI PA7 (PA5 is also the green LED LD2)
SPI_BAUD = 5000000

RADIO_CS = "PB6"  # D10
RADIO_RESET = "PC7"  # D9
RADIO_DIO0 = "PA10"  # D2, EXTI line 10
RADIO_DIO1 = "PB3"  # D3, EXTI line 3

BUTTON = "PC13"  # B1, active low (external pull-up on the NUCLEO)

SHT3X_ADDR = 0x44
OLED_ADDR = 0x3C


def i2c():
    return I2C(I2C_ID, scl=Pin(I2C_SCL), sda=Pin(I2C_SDA), freq=I2C_FREQ)


def radio(lora_cfg):
    """The SX1276 modem; RuntimeError when no radio answers (register 0x42 != 0x12)."""
    from lora import SX1276

    spi = SPI(SPI_ID, baudrate=SPI_BAUD, polarity=0, phase=0)
    return SX1276(
        spi,
        Pin(RADIO_CS, Pin.OUT, value=1),
        dio0=Pin(RADIO_DIO0, Pin.IN),
        dio1=Pin(RADIO_DIO1, Pin.IN),
        reset=Pin(RADIO_RESET, Pin.OUT, value=1),
        lora_cfg=lora_cfg,
    )


def button(handler):
    """B1 calls handler(pin) on press."""
    pin = Pin(BUTTON, Pin.IN)
    pin.irq(handler=handler, trigger=Pin.IRQ_FALLING)
    return pin
