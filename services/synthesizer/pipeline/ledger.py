"""Where every entry of one job attempt went, by id, for the job's accounting (checked by the store):
the entries the fetch did not take (with their reasons), the articles the store rejected, and the
articles the synthesis left out of every story."""

from __future__ import annotations

from dataclasses import dataclass, field

from storywire.v1 import common_pb2, store_pb2

REJECTED = common_pb2.LEFT_OUT_REASON_REJECTED


@dataclass
class Ledger:
    entries_found: int = 0
    not_taken: list[common_pb2.LeftOutArticle] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # article ids in PutArticles stream order
    rejected: list[common_pb2.LeftOutArticle] = field(default_factory=list)
    synthesis_left_out: list[common_pb2.LeftOutArticle] = field(default_factory=list)

    def store_rejected(self, items: list[common_pb2.RejectedItem]) -> None:
        """Articles the store refused: not taken, with its reason (the index is the stream position)."""
        for item in items:
            aid = self.written[item.index] if 0 <= item.index < len(self.written) else item.key
            self.rejected.append(
                common_pb2.LeftOutArticle(article_id=aid, reason=REJECTED, detail=item.reason[:500])
            )

    def left_out(self) -> list[common_pb2.LeftOutArticle]:
        """Every entry in no story: an article the store rejected counts once, as rejected."""
        refused = {a.article_id for a in self.rejected}
        kept = [a for a in self.synthesis_left_out if a.article_id not in refused]
        return [*self.not_taken, *self.rejected, *kept]

    def done_request(self, request: store_pb2.UpdateJobRequest) -> None:
        request.entries_found = self.entries_found
        request.left_out.extend(self.left_out())
