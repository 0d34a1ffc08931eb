"""Synthesizer settings (environment variables STORYWIRE_SYNTHESIZER_*, STORYWIRE_LLM_*)."""

from pydantic import Field

from runtime.settings import CommonSettings


class SynthesizerSettings(CommonSettings):
    synthesizer_port: int = Field(default=50052, ge=0, le=65535, description="gRPC port of the synthesizer.")
