"""`python -m services.synthesizer`: run the synthesizer service until SIGTERM."""

from runtime.server import run
from services.synthesizer.service import SynthesizerService
from services.synthesizer.settings import SynthesizerSettings

if __name__ == "__main__":
    raise SystemExit(
        run(SynthesizerSettings, SynthesizerService, lambda s: s.synthesizer_port, "synthesizer")
    )
