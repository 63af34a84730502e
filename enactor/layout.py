"""Where the enactor keeps things in an endpoint's hosted zone, and how to read them back.

Every reader of Route 53 (the enactor core, `dnsctl resolve`, `status`, `repair`, the prober,
the model checker) names records through this module, so the layout is written down once:

    <endpoint>.                      A/AAAA  ALIAS -> <tree>.<endpoint>.      the root customers use
    rollback.<endpoint>.             A/AAAA  ALIAS -> previously active tree
    _lock.<endpoint>.                TXT     "holder=<id> expires=<epoch> counter=<n>"
    _applied.<endpoint>.             TXT     "version=<n> tree=<tree id>"      (guarded mode's CAS word)
    t-<uuid>.<endpoint>.             A/AAAA  weighted ALIAS to nodes, SetIdentifier=<node label>  (fresh per plan)
    _meta.t-<uuid>.<endpoint>.       TXT     "plan=<v>" "created=<iso>" "types=A,AAAA" "lbs=<n>"
    v-<digest>.<endpoint>.           A/AAAA  a content-named interior node shared by trees (enactor/tree.py):
                                             weighted ALIAS to nodes, SetIdentifier=<child node label>
    w-<digest>.<endpoint>.           A/AAAA  a content-named bottom node: weighted *value* sets, one per LB,
                                             SetIdentifier=<lb id>@<az>, Weight=<lb weight>, the LB's addresses

The names are chosen for Route 53's list order (by name with the labels reversed, then type):
everything a unit decides on (root, `_applied`, `_lock`, rollback, every tree's top and, right
after it, its metadata) comes before every shared node, so one ListResourceRecordSets page from
the root reads it all (`read_endpoint(..., heads_only=True)`), and the interior nodes (`v-`)
come as one run before the bottom nodes (`w-`), so a few pages read every interior node.
Nodes named `n-<digest>` (an earlier writer of this layout) are read as nodes too.

Tree names keep the talk's fresh UUIDs (a new plan never edits a live tree), but every tree has
a metadata record beside it, and its nodes name every LB (id, AZ, weight, addresses), so an
operator can explain it from Route 53 alone: `read_endpoint` walks each tree from its top and
reads its members back into `TreeMeta.members`.

Older writers (and some test fixtures) used a second layout, still read here: per-tree interior
sets `i-<uuid>-<k>`, shared leaves `leaf-<lb id>-<digest>` holding an LB's addresses, and
metadata listing every member ("lb=<id> az=<az> weight=<w> leaf=<name>"), paged in big trees
(one TXT record set must fit one change batch, so members beyond the first page go to `p<k>`
records directly below the metadata name).

In both layouts the metadata record (page 0) is written last, so its presence marks a tree as
complete; `read_endpoint` checks the rest by walking the tree. Records shared between trees
(nodes, leaves) belong to no tree: clean-up deletes one when no retained tree reaches it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from services.route53.records import RecordSet, normalise_name

LOCK_LABEL = "_lock"
APPLIED_LABEL = "_applied"
ROLLBACK_LABEL = "rollback"
META_LABEL = "_meta"
TREE_PREFIX = "t-"
INTERIOR_PREFIX = "i-"
LEAF_PREFIX = "leaf-"
NODE_PREFIX = "w-"  # bottom nodes (the LBs' addresses)
INTERIOR_NODE_PREFIX = "v-"  # shared interior nodes (after the tops, before the bottom nodes)
OLD_NODE_PREFIX = "n-"  # nodes of an earlier writer (interior and bottom alike)
META_PAGE_PREFIX = "p"
TXT_STRING_MAX = 255  # DNS character-string limit; longer TXT text is split into several strings
TXT_TTL = 60
TREE_TTL = 60
LEAF_TTL = 60


def root_name(endpoint: str) -> str:
    return normalise_name(endpoint)


def rollback_name(endpoint: str) -> str:
    return normalise_name(f"{ROLLBACK_LABEL}.{endpoint}")


def lock_name(endpoint: str) -> str:
    return normalise_name(f"{LOCK_LABEL}.{endpoint}")


def applied_name(endpoint: str) -> str:
    return normalise_name(f"{APPLIED_LABEL}.{endpoint}")


def tree_name(endpoint: str, tree_id: str) -> str:
    """tree_id is "t-<uuid hex>"."""
    return normalise_name(f"{tree_id}.{endpoint}")


def meta_name(endpoint: str, tree_id: str) -> str:
    return normalise_name(f"{META_LABEL}.{tree_id}.{endpoint}")


def meta_page_name(endpoint: str, tree_id: str, page: int) -> str:
    """Page 0 is the metadata record itself; pages 1.. sit directly below it (explain.py reads them so)."""
    base = meta_name(endpoint, tree_id)
    return base if page == 0 else normalise_name(f"{META_PAGE_PREFIX}{page:03d}.{base}")


def interior_name(endpoint: str, tree_id: str, path: str) -> str:
    """An interior weighted set of tree "t-<uuid>": "i-<uuid>-<path>" (path like "0" or "2-17")."""
    return normalise_name(f"{INTERIOR_PREFIX}{tree_id[len(TREE_PREFIX):]}-{path}.{endpoint}")


def node_name(endpoint: str, digest: str, interior: bool = False) -> str:
    """A shared tree node, named by a digest of its content (enactor/tree.py)."""
    return normalise_name(f"{INTERIOR_NODE_PREFIX if interior else NODE_PREFIX}{digest}.{endpoint}")


def is_interior_node(name: str) -> bool:
    return name.startswith(INTERIOR_NODE_PREFIX)


def split_set_identifier(sid: str) -> tuple[str, str]:
    """A bottom node member's SetIdentifier "<lb id>@<az>" -> (lb id, az)."""
    lb_id, _, az = sid.rpartition("@")
    return (lb_id, az) if lb_id else (sid, "")


def leaf_name(endpoint: str, lb_id: str, addresses: tuple[str, ...]) -> str:
    """A leaf is named by its LB and a digest of its addresses, so unchanged LBs share leaves."""
    digest = hashlib.sha256(",".join(sorted(addresses)).encode()).hexdigest()[:10]
    return normalise_name(f"{LEAF_PREFIX}{lb_id}-{digest}.{endpoint}")


def tree_id_of(name: str, endpoint: str) -> str | None:
    """'t-abc.<endpoint>.' -> 't-abc'; None if the name is not a tree top."""
    name, suffix = normalise_name(name), "." + root_name(endpoint)
    if not name.endswith(suffix):
        return None
    label = name[: -len(suffix)]
    return label if label.startswith(TREE_PREFIX) and "." not in label else None


def quote_txt(text: str) -> str:
    """One TXT value; text over 255 characters becomes several quoted strings (joined on read)."""
    chunks = [text[i : i + TXT_STRING_MAX] for i in range(0, len(text), TXT_STRING_MAX)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def unquote_txt(value: str) -> str:
    """Route 53 TXT values are one or more quoted strings; join them as DNS clients do."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
    if not parts:
        return value
    return "".join(re.sub(r"\\(.)", r"\1", p) for p in parts)


def parse_fields(text: str) -> dict[str, str]:
    """'holder=a expires=12 counter=3' -> {'holder': 'a', ...}."""
    out: dict[str, str] = {}
    for token in text.split():
        if "=" in token:
            k, v = token.split("=", 1)
            out[k] = v
    return out


@dataclass(frozen=True, slots=True, order=True)
class LockValue:
    holder: str
    expires: int
    counter: int

    def render(self) -> str:
        return quote_txt(f"holder={self.holder} expires={self.expires} counter={self.counter}")

    @classmethod
    def parse(cls, value: str) -> LockValue | None:
        f = parse_fields(unquote_txt(value))
        try:
            return cls(holder=f["holder"], expires=int(f["expires"]), counter=int(f.get("counter", "0")))
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True, slots=True, order=True)
class AppliedValue:
    version: int
    tree_id: str

    def render(self) -> str:
        return quote_txt(f"version={self.version} tree={self.tree_id}")

    @classmethod
    def parse(cls, value: str) -> AppliedValue | None:
        f = parse_fields(unquote_txt(value))
        try:
            return cls(version=int(f["version"]), tree_id=f.get("tree", ""))
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class MetaMember:
    lb_id: str
    az: str
    weight: int
    leaf: str  # the record name holding its addresses (a leaf, or a bottom node)
    ipv4: tuple[str, ...] = ()  # read back from a bottom node (empty for the older layout)
    ipv6: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TreeMeta:
    """What a tree's metadata record says: the plan behind it and the LB behind every member.

    `pages` and `record_types` are written by the enactor; metadata without them (older
    writers, hand-made records) reads as one page of unknown types.
    """

    plan_version: int
    created_at: str
    members: tuple[MetaMember, ...]
    pages: int = 1
    record_types: tuple[str, ...] = ()
    lb_count: int | None = None  # "lbs=<n>": the shared-node layout (members are read from the nodes)

    def _header(self) -> list[str]:
        values = [quote_txt(f"plan={self.plan_version}"), quote_txt(f"created={self.created_at}")]
        if self.pages != 1:
            values.append(quote_txt(f"pages={self.pages}"))
        if self.record_types:
            values.append(quote_txt(f"types={','.join(self.record_types)}"))
        if self.lb_count is not None:
            values.append(quote_txt(f"lbs={self.lb_count}"))
        return values

    @staticmethod
    def _member(m: MetaMember) -> str:
        return quote_txt(f"lb={m.lb_id} az={m.az} weight={m.weight} leaf={m.leaf}")

    def render_values(self) -> tuple[str, ...]:
        """All of it as one record's values (small trees); each string within 255 characters."""
        return tuple(self._header() + [self._member(m) for m in self.members])

    def render_paged(self, per_page: int, max_chars: int) -> tuple[tuple[str, ...], ...]:
        """The values of page 0 (header + first members) and of every further page.

        A page holds at most `per_page` members and `max_chars` characters, so each page's
        record fits a change batch; page 0's header says how many pages there are.
        """
        members = [self._member(m) for m in self.members]
        chunks: list[list[str]] = [[]]
        size = 0
        for value in members:
            if chunks[-1] and (len(chunks[-1]) >= per_page or size + len(value) > max_chars):
                chunks.append([])
                size = 0
            chunks[-1].append(value)
            size += len(value)
        header = TreeMeta(self.plan_version, self.created_at, self.members, len(chunks), self.record_types, self.lb_count)._header()
        return (tuple(header + chunks[0]), *(tuple(c) for c in chunks[1:]))

    @classmethod
    def parse(cls, values: tuple[str, ...]) -> TreeMeta | None:
        """Values of page 0, optionally followed by the values of the other pages."""
        version, created, members, pages, types, count = None, "", [], 1, (), None
        for raw in values:
            text = unquote_txt(raw)
            f = parse_fields(text)
            try:
                if text.startswith("plan="):
                    version = int(f["plan"])
                elif text.startswith("created="):
                    created = f.get("created", "")
                elif text.startswith("pages="):
                    pages = int(f["pages"])
                elif text.startswith("types="):
                    types = tuple(t for t in f["types"].split(",") if t)
                elif text.startswith("lbs="):
                    count = int(f["lbs"])
                elif "lb" in f:
                    members.append(MetaMember(f["lb"], f.get("az", ""), int(f.get("weight", "0")), f.get("leaf", "")))
            except ValueError:
                return None
        if version is None or pages < 1:
            return None
        return cls(version, created, tuple(sorted(members, key=lambda m: m.lb_id)), pages, types, count)


# -- reading an endpoint's records back ------------------------------------------------------

Role = str  # "root" | "rollback" | "lock" | "applied" | "top" | "interior" | "meta" | "leaf" | "node" | "other"


def role_of(name: str, endpoint: str) -> tuple[Role, str | None]:
    """What a record name is in `endpoint`'s layout, and the tree ("t-<uuid>") it belongs to."""
    name, root = normalise_name(name), root_name(endpoint)
    if name == root:
        return "root", None
    if not name.endswith("." + root):
        return "other", None
    labels = name[: -len(root) - 1].split(".")
    if labels == [ROLLBACK_LABEL]:
        return "rollback", None
    if labels == [LOCK_LABEL]:
        return "lock", None
    if labels == [APPLIED_LABEL]:
        return "applied", None
    if len(labels) == 1 and labels[0].startswith(TREE_PREFIX):
        return "top", labels[0]
    if len(labels) == 1 and labels[0].startswith(INTERIOR_PREFIX):
        uuid_part = labels[0][len(INTERIOR_PREFIX) :].split("-", 1)[0]
        return "interior", TREE_PREFIX + uuid_part
    if len(labels) == 1 and labels[0].startswith(LEAF_PREFIX):
        return "leaf", None
    if len(labels) == 1 and labels[0].startswith((NODE_PREFIX, INTERIOR_NODE_PREFIX, OLD_NODE_PREFIX)):
        return "node", None
    if len(labels) == 2 and labels[0] == META_LABEL and labels[1].startswith(TREE_PREFIX):
        return "meta", labels[1]
    if len(labels) == 3 and labels[1] == META_LABEL and labels[0].startswith(META_PAGE_PREFIX) and labels[2].startswith(TREE_PREFIX):
        return "meta", labels[2]
    return "other", None


@dataclass(frozen=True, slots=True)
class TreeInZone:
    """One tree as found in the zone: every record of it, what its metadata says, and whether it is whole.

    `records` are the tree's own records, in deletion order: metadata page 0 first (so a partly
    deleted tree reads as incomplete at once), then the top set, the older layout's interior sets
    and the other metadata pages. Shared nodes and leaves are not among them (see `leaves`).
    For the shared-node layout, `meta.members` is read back from the tree's bottom nodes.
    """

    tree_id: str
    records: tuple[RecordSet, ...]
    meta: TreeMeta | None
    complete: bool
    leaves: frozenset[str]  # the shared names (nodes, leaves) the tree reaches (heads_only: its top's children)
    record_types: tuple[str, ...] = ()  # the types its top actually holds

    @property
    def version(self) -> int | None:
        return self.meta.plan_version if self.meta else None


@dataclass(frozen=True, slots=True)
class EndpointZone:
    """An endpoint's records sorted into their roles: the facts the enactor decides on."""

    endpoint: str
    lock: RecordSet | None
    applied: RecordSet | None
    roots: tuple[RecordSet, ...]  # the root's record sets, by type (A before AAAA)
    rollbacks: tuple[RecordSet, ...]
    trees: tuple[TreeInZone, ...]  # by tree id
    leaves: tuple[RecordSet, ...]  # shared records: nodes (and the older layout's leaves)
    record_count: int = 0  # every record set listed, SOA and NS included (what the zone quota counts)

    @property
    def lock_value(self) -> LockValue | None:
        return LockValue.parse(" ".join(self.lock.values)) if self.lock else None

    @property
    def applied_value(self) -> AppliedValue | None:
        return AppliedValue.parse(" ".join(self.applied.values)) if self.applied else None

    def tree(self, tree_id: str | None) -> TreeInZone | None:
        return next((t for t in self.trees if t.tree_id == tree_id), None)

    def root_targets(self) -> dict[str, str | None]:
        """record type -> tree id the root aliases (None: not an alias, or not at a tree name)."""
        return {r.type: (tree_id_of(r.alias.dns_name, self.endpoint) if r.alias else None) for r in self.roots}

    def rollback_targets(self) -> dict[str, str | None]:
        return {r.type: (tree_id_of(r.alias.dns_name, self.endpoint) if r.alias else None) for r in self.rollbacks}

    @property
    def dangling(self) -> bool:
        """A root alias points at a tree that is missing or incomplete (the state of 20 October)."""
        for r in self.roots:
            if r.alias is None:
                continue
            tree = self.tree(tree_id_of(r.alias.dns_name, self.endpoint))
            if tree is None or not tree.complete:
                return True
        return False

    @property
    def active_tree(self) -> TreeInZone | None:
        """The complete tree the root's first alias points at (None when absent or dangling)."""
        for r in self.roots:
            if r.alias is not None:
                tree = self.tree(tree_id_of(r.alias.dns_name, self.endpoint))
                return tree if tree is not None and tree.complete else None
        return None

    @property
    def active_version(self) -> int | None:
        """The plan version the root serves, read from its tree's metadata."""
        tree = self.active_tree
        return tree.version if tree else None

    def applied_version(self) -> int | None:
        """The applied-version record if present (guarded mode), else the version the root serves."""
        value = self.applied_value
        return value.version if value else self.active_version


# Reads of a small zone given as a tuple are memoised by value: the result is a frozen value of
# its input, and the same records come back again and again (every poll of an unchanged zone;
# the model checker feeds the same few thousand listings to millions of machine steps, where
# this parse was a fifth of its time). Large zones are not kept (the cache's memory stays small).
READ_MEMO_ENTRIES = 1024
READ_MEMO_MAX_RECORDS = 256


def read_endpoint(endpoint: str, records: Iterable[RecordSet], heads_only: bool = False) -> EndpointZone:
    """Sort a zone's record sets (any iterable of RecordSet) into `endpoint`'s layout.

    `heads_only`: the records are a targeted read of the heads (root, bookkeeping, tops and
    metadata, no shared nodes). A tree then counts as complete when its metadata is whole and its
    top holds every type the metadata names: the enactor writes a tree's nodes first, each node
    whole in one batch and before any alias to it, its top next and its metadata last, and the
    clean-up deletes a tree's metadata first and nodes only after every node above them, so a
    node in the zone always has its whole subtree below it. Hand damage below the tops is not
    seen; a build that trips over it fails and the next unit lists the whole zone.
    `record_count` is then the number of records read, not the zone's."""
    if type(records) is tuple and len(records) <= READ_MEMO_MAX_RECORDS:
        return _read_endpoint_memo(endpoint, records, heads_only)
    return _read_endpoint(endpoint, records, heads_only)


@functools.lru_cache(maxsize=READ_MEMO_ENTRIES)
def _read_endpoint_memo(endpoint: str, records: tuple[RecordSet, ...], heads_only: bool) -> EndpointZone:
    return _read_endpoint(endpoint, records, heads_only)


def _read_endpoint(endpoint: str, records: Iterable[RecordSet], heads_only: bool) -> EndpointZone:
    endpoint = root_name(endpoint)
    by_role: dict[str, list[RecordSet]] = {}
    tree_records: dict[str, list[RecordSet]] = {}
    index: dict[tuple[str, str], list[RecordSet]] = {}
    count = 0
    for r in records:
        count += 1
        role, tree_id = role_of(r.name, endpoint)
        index.setdefault((r.name, r.type), []).append(r)
        if tree_id is not None:
            tree_records.setdefault(tree_id, []).append(r)
        else:
            by_role.setdefault(role, []).append(r)

    def one(role: str, rtype: str) -> RecordSet | None:
        return next((r for r in by_role.get(role, ()) if r.type == rtype and r.set_identifier is None), None)

    trees = tuple(_tree_in_zone(endpoint, tid, recs, index, heads_only) for tid, recs in sorted(tree_records.items()))
    address = ("A", "AAAA")
    return EndpointZone(
        endpoint=endpoint,
        lock=one("lock", "TXT"),
        applied=one("applied", "TXT"),
        roots=tuple(sorted((r for r in by_role.get("root", ()) if r.type in address), key=lambda r: r.type)),
        rollbacks=tuple(sorted((r for r in by_role.get("rollback", ()) if r.type in address), key=lambda r: r.type)),
        trees=trees,
        leaves=tuple(sorted([*by_role.get("leaf", ()), *by_role.get("node", ())])),
        record_count=count,
    )


def _tree_in_zone(endpoint: str, tree_id: str, recs: list[RecordSet], index, heads_only: bool = False) -> TreeInZone:
    page0 = meta_name(endpoint, tree_id)
    meta = None
    head = [r for r in recs if r.name == page0 and r.type == "TXT"]
    pages = sorted((r for r in recs if role_of(r.name, endpoint)[0] == "meta" and r.name != page0), key=lambda r: r.name)
    if head:
        meta = TreeMeta.parse(head[0].values + tuple(v for p in pages for v in p.values))
    top = tree_name(endpoint, tree_id)
    top_types = tuple(sorted({r.type for r in recs if r.name == top and r.type in ("A", "AAAA")}))
    types = (meta.record_types if meta and meta.record_types else ()) or top_types

    def order(r: RecordSet) -> tuple[int, str, str, str]:
        rank = 0 if r.name == page0 else {"top": 1, "interior": 2}.get(role_of(r.name, endpoint)[0], 3)
        return (rank, r.name, r.type, r.set_identifier or "")

    if heads_only:
        children = frozenset(r.alias.dns_name for r in recs if r.name == top and r.alias is not None)
        whole = meta is not None and bool(types) and set(types) <= set(top_types) and _pages_whole(endpoint, tree_id, meta, pages)
        return TreeInZone(tree_id, tuple(sorted(recs, key=order)), meta, whole, children, top_types)
    walks = {rt: _walk(endpoint, tree_id, rt, index) for rt in types}
    reached = frozenset().union(*(w.shared for w in walks.values())) if walks else frozenset()

    complete = False
    if meta is not None and types and all(w.ok for w in walks.values()):
        complete = _pages_whole(endpoint, tree_id, meta, pages)
        lbs = [set(w.members) for w in walks.values()]
        if meta.lb_count is not None:
            members = _members_of(walks)
            complete = complete and all(s == lbs[0] for s in lbs) and len(lbs[0]) == meta.lb_count
            meta = TreeMeta(meta.plan_version, meta.created_at, members, meta.pages, types, meta.lb_count)
        else:
            complete = complete and all(s == {m.lb_id for m in meta.members} for s in lbs)
    return TreeInZone(tree_id, tuple(sorted(recs, key=order)), meta, complete, reached, top_types)


@dataclass(slots=True)
class _Walk:
    ok: bool
    shared: set[str]
    members: dict[str, RecordSet]  # lb id -> the record holding its addresses (bottom member or leaf)
    via: dict[str, RecordSet]  # lb id -> the weighted record that names it (older layout: its alias)


def _walk(endpoint: str, tree_id: str, rtype: str, index) -> _Walk:
    """Follow one record type's weighted sets from the tree's top down to the LBs' addresses."""
    walk = _Walk(True, set(), {}, {})
    todo, seen = [tree_name(endpoint, tree_id)], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue  # identical groups share one node; a cycle cannot arise from content names
        seen.add(name)
        members = index.get((name, rtype), [])
        if not members or any(m.set_identifier is None for m in members):
            walk.ok = False
            continue
        for m in members:
            if m.alias is None:
                lb_id = split_set_identifier(m.set_identifier)[0]
                walk.members[lb_id], walk.via[lb_id] = m, m  # a bottom node's member: the LB itself
                continue
            target = m.alias.dns_name
            role, owner = role_of(target, endpoint)
            if role == "node" or (role == "interior" and owner == tree_id):
                if role == "node":
                    walk.shared.add(target)
                todo.append(target)
            elif role == "leaf":
                walk.shared.add(target)
                leaf = index.get((target, rtype), [])
                if not leaf or leaf[0].alias is not None or not leaf[0].values:
                    walk.ok = False
                else:
                    walk.members[m.set_identifier], walk.via[m.set_identifier] = leaf[0], m
            else:
                walk.ok = False
    return walk


def _members_of(walks: dict[str, _Walk]) -> tuple[MetaMember, ...]:
    out: dict[str, MetaMember] = {}
    for rtype, walk in sorted(walks.items()):
        for lb_id, r in walk.members.items():
            az = split_set_identifier(r.set_identifier or "")[1]
            m = out.get(lb_id) or MetaMember(lb_id, az, r.weight or 0, r.name)
            if rtype == "A":
                m = MetaMember(m.lb_id, m.az, m.weight, m.leaf, tuple(r.values), m.ipv6)
            else:
                m = MetaMember(m.lb_id, m.az, m.weight, m.leaf, m.ipv4, tuple(r.values))
            out[lb_id] = m
    return tuple(sorted(out.values(), key=lambda m: m.lb_id))


def _pages_whole(endpoint: str, tree_id: str, meta: TreeMeta, pages: list[RecordSet]) -> bool:
    """Every declared metadata page is there."""
    return {p.name for p in pages} == {meta_page_name(endpoint, tree_id, k) for k in range(1, meta.pages)}
