"""The shared stream frame: runtime, rejections, eager delivery, settings, observability, topology."""
