"""Where the enactor keeps things in an endpoint's hosted zone, and how to read them back.

Every reader of Route 53 (the enactor core, `dnsctl resolve`, `status`, `repair`, the prober,
the model checker) names records through this module, so the layout is written down once:

    <endpoint>.                      A/AAAA  ALIAS -> <tree>.<endpoint>.      the root customers use
    rollback.<endpoint>.             A/AAAA  ALIAS -> previously active tree
    _lock.<endpoint>.                TXT     "holder=<id> expires=<epoch> counter=<n>"
    _applied.<endpoint>.             TXT     "version=<n> tree=<tree id>"      (guarded mode's CAS word)
    t-<uuid>.<endpoint>.             A/AAAA  weighted ALIAS, SetIdentifier=<lb id> or <interior id>
    i-<uuid>-<k>.<endpoint>.         A/AAAA  weighted ALIAS (interior level, fleets > 100 LBs)
    leaf-<lb id>-<digest>.<endpoint>. A/AAAA  the load balancer's addresses (shared by trees)
    _meta.t-<uuid>.<endpoint>.       TXT     "plan=<v>" "created=<iso>" "lb=<id> az=<az> weight=<w> leaf=<name>" ...

Tree names keep the talk's fresh UUIDs (a new plan never edits a live tree), but every tree has
a metadata record beside it so an operator can explain it from Route 53 alone.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from services.route53.records import normalise_name

LOCK_LABEL = "_lock"
APPLIED_LABEL = "_applied"
ROLLBACK_LABEL = "rollback"
META_LABEL = "_meta"
TREE_PREFIX = "t-"
INTERIOR_PREFIX = "i-"
LEAF_PREFIX = "leaf-"
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
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
    leaf: str


@dataclass(frozen=True, slots=True)
class TreeMeta:
    """What a tree's metadata record says: the plan behind it and the LB behind every member."""

    plan_version: int
    created_at: str
    members: tuple[MetaMember, ...]

    def render_values(self) -> tuple[str, ...]:
        """One TXT value per string, each under Route 53's 255-character limit."""
        values = [quote_txt(f"plan={self.plan_version}"), quote_txt(f"created={self.created_at}")]
        values += [quote_txt(f"lb={m.lb_id} az={m.az} weight={m.weight} leaf={m.leaf}") for m in self.members]
        return tuple(values)

    @classmethod
    def parse(cls, values: tuple[str, ...]) -> TreeMeta | None:
        version, created, members = None, "", []
        for raw in values:
            text = unquote_txt(raw)
            f = parse_fields(text)
            if text.startswith("plan="):
                try:
                    version = int(f["plan"])
                except ValueError:
                    return None
            elif text.startswith("created="):
                created = f.get("created", "")
            elif "lb" in f:
                try:
                    members.append(MetaMember(f["lb"], f.get("az", ""), int(f.get("weight", "0")), f.get("leaf", "")))
                except ValueError:
                    return None
        if version is None:
            return None
        return cls(plan_version=version, created_at=created, members=tuple(sorted(members, key=lambda m: m.lb_id)))
