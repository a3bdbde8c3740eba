"""iiot_sim: run the real node firmware in the MicroPython unix port with simulated sensors,
radio channel and serial port (docs/simulator.md).

Library use (the demo and benchmarks):

    from iiot_sim.runner import Simulation
    from iiot_sim.config import SimConfig
    from iiot_sim.channel import ChannelConfig, LinkParams
"""

__version__ = "0.1.0"
