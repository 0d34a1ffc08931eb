"""The shared service runtime: settings, logging, telemetry, the gRPC server and client helpers.

Written once for the fetcher, synthesizer and store; it imports no service.
"""

from runtime.settings import CommonSettings, SettingsError, load_settings

__all__ = ["CommonSettings", "SettingsError", "load_settings"]
