"""Model core. Importing it makes torchvision importable beside CPU torch even in an environment that
lacks the compat .pth file (see rge_core/compat/torchvision_cpu.py); the hook does nothing otherwise."""

from rge_core.compat.torchvision_cpu import install_import_hook

install_import_hook()
