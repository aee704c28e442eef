"""firewatch: the smart brain of a forest-fire warning system.

Detections (sensor, camera, satellite) are validated, placed on the forest grid, judged by rules,
folded into incidents in event time, and emitted as incident events.
"""

__version__ = "0.1.0"
