"""Apollo's automatic persisted queries: a request may name its document by SHA-256 hash.

The protocol (https://www.apollographql.com/docs/apollo-server/performance/apq):

- a client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": H}` without a
  `query` (by POST, or by GET with `extensions` as a URL parameter, which a CDN can cache);
- a hash this process has not stored is answered 200 `PersistedQueryNotFound` with
  `extensions.code` PERSISTED_QUERY_NOT_FOUND (Apollo clients retry with the query; a 400
  would make Apollo Link turn persisted queries off);
- the retry sends the query with the same extension: the hash must be the SHA-256 of the
  query's UTF-8 text (lower-case hex), else the request is refused 400 BAD_USER_INPUT; a match
  stores the document (unless it is over GATEWAY_MAX_DOCUMENT_BYTES, which the limits refuse
  anyway), least recently used dropped past GATEWAY_PERSISTED_QUERIES_MAX, so the store holds
  at most their product in bytes;
- with the store turned off (0) every such request gets `PersistedQueryNotSupported`, which
  makes Apollo clients stop sending hashes.

A stored document only replaces the missing `query`: it is executed exactly as if it had been
sent (the limits, the guard and the rate limit see no difference). One store serves every
token: a hash names a document, never data, and what the document reads is judged against the
caller's own grant. The store is in this process's memory, so each worker process keeps its
own; a miss costs the client one retry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import OrderedDict
from typing import Any

from strawberry.http import GraphQLRequestData

from gateway.errors import ErrorCode
from gateway.graph.http import HTTPError

VERSION = 1
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
# What Apollo Server sends with these answers: no cache may keep a miss (the next request for
# the hash would hit), whatever the response to the GET that carried it.
_NO_CACHE = {"Cache-Control": "private, no-cache, must-revalidate"}


def sha256_hex(query: str) -> str:
    """The hash of `query` that the protocol uses: SHA-256 of its UTF-8, lower-case hex."""
    return hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest()


class PersistedQueries:
    """Documents by hash, the least recently used dropped past `max_size` (0: turned off);
    none larger than `max_document_bytes`."""

    def __init__(self, max_size: int, max_document_bytes: int) -> None:
        self.max_size = max_size
        self.max_document_bytes = max_document_bytes
        self._documents: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._documents)

    def __contains__(self, sha256_hash: object) -> bool:
        return sha256_hash in self._documents

    def get(self, sha256_hash: str) -> str | None:
        """The stored document of `sha256_hash` (now the most recently used), or None."""
        document = self._documents.get(sha256_hash)
        if document is not None:
            self._documents.move_to_end(sha256_hash)
        return document

    def put(self, sha256_hash: str, document: str) -> None:
        """Store `document` under its hash (not when it is too large to be run)."""
        if self.max_size <= 0 or len(document.encode("utf-8", "surrogatepass")) > (
            self.max_document_bytes
        ):
            return
        self._documents[sha256_hash] = document
        self._documents.move_to_end(sha256_hash)
        while len(self._documents) > self.max_size:
            self._documents.popitem(last=False)

    def resolve(self, data: GraphQLRequestData) -> GraphQLRequestData:
        """`data` with its `query` filled in from the store when it names a persisted query
        (registering the query when it is sent along); HTTPError for a miss, a bad extension
        or a hash that is not the query's."""
        extension = (data.extensions or {}).get("persistedQuery")
        if extension is None:
            return data
        sha256_hash = _checked_hash(extension)
        if self.max_size <= 0:
            raise HTTPError(
                200,
                "PersistedQueryNotSupported",
                ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED,
                headers=_NO_CACHE,
                extensions={
                    "hint": "Persisted queries are turned off here "
                    "(GATEWAY_PERSISTED_QUERIES_MAX=0): send the `query` without "
                    "`extensions.persistedQuery`."
                },
            )
        if data.query is None:
            document = self.get(sha256_hash)
            if document is None:
                raise HTTPError(
                    200,
                    "PersistedQueryNotFound",
                    ErrorCode.PERSISTED_QUERY_NOT_FOUND,
                    headers=_NO_CACHE,
                    extensions={
                        "hint": "No document is stored under this sha256Hash: send the request "
                        "again with the `query` as well (Apollo clients do so by themselves)."
                    },
                )
            return dataclasses.replace(data, query=document)
        actual = sha256_hex(data.query)
        if actual != sha256_hash.lower():
            raise HTTPError(
                400,
                f"`extensions.persistedQuery.sha256Hash` is {sha256_hash}, but the SHA-256 of "
                f"the `query` sent is {actual}: hash the query's exact UTF-8 text (lower-case "
                "hex), or send the query without the extension.",
                headers=_NO_CACHE,
            )
        return data

    def register(self, data: GraphQLRequestData) -> None:
        """Store the document of `data`, `resolve`d already, when it sent one with its hash:
        only once the request's token turned out valid. Storing it before (as `resolve` did)
        let anyone without a token churn the store with made-up documents, dropping
        applications' own (found by a review)."""
        extension = (data.extensions or {}).get("persistedQuery")
        if extension is None or data.query is None or self.max_size <= 0:
            return
        self.put(_checked_hash(extension), data.query)  # `resolve` checked it is the query's


def _checked_hash(extension: Any) -> str:
    """The `sha256Hash` of an `extensions.persistedQuery` value; HTTPError 400 naming what is
    wrong with it."""
    if not isinstance(extension, dict):
        raise HTTPError(
            400,
            "`extensions.persistedQuery` must be an object "
            '`{"version": 1, "sha256Hash": "<64 hex digits>"}`.',
        )
    version = extension.get("version")
    if version != VERSION or isinstance(version, bool):
        raise HTTPError(
            400,
            f"Unsupported persisted query version {version!r} in "
            "`extensions.persistedQuery.version`: only version 1 (SHA-256) is supported.",
        )
    sha256_hash = extension.get("sha256Hash")
    if not isinstance(sha256_hash, str) or not _SHA256_HEX.match(sha256_hash):
        shown = repr(sha256_hash)[:80]
        raise HTTPError(
            400,
            f"`extensions.persistedQuery.sha256Hash` {shown} is not a SHA-256 hash: send the "
            "64 hex digits of the SHA-256 of the query's UTF-8 text.",
        )
    return sha256_hash.lower()  # hex digits in either case name one hash (stored lower-case)
