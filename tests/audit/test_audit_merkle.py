"""RFC 9162 Merkle trees: roots, inclusion and consistency proofs against known vectors, and every
mutation of a proof (index, a flipped bit, a dropped or extra node, another root) fails. A wrong
tree size is caught where the size is signed (the checkpoint note; ``test_audit_proofs``): the
RFC's verifier derives only the tree's shape from it, and some shapes coincide."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from app.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_path,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# The eight leaf inputs and the roots of their prefixes are the reference vectors of Certificate
# Transparency's Merkle tree tests (google/certificate-transparency, merkle_tree_test.cc,
# Apache License 2.0; also in transparency-dev/merkle's testdata). Leaves are raw data here:
# leaf_hash prepends 0x00 to whatever bytes it is given.
CT_LEAVES = [bytes.fromhex(h) for h in [
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_roots_match_the_certificate_transparency_vectors() -> None:
    leaves = [leaf_hash(d) for d in CT_LEAVES]
    assert root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    for size, expected in enumerate(CT_ROOTS, start=1):
        assert root(leaves[:size]).hex() == expected


def test_leaf_and_node_hashing_are_the_rfc_s() -> None:
    entry = "ab" * 32
    assert leaf_hash(entry) == hashlib.sha256(b"\x00" + bytes.fromhex(entry)).digest()
    left, right = b"l" * 32, b"r" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


# RFC 9162 §2.1.5: the tree of seven leaves d0..d6 and its named nodes, built here by hand.
def _rfc_example() -> tuple[list[bytes], dict[str, bytes]]:
    d = [f"d{i}".encode() for i in range(7)]
    a, b, c, dd, e, f, j = (leaf_hash(x) for x in d)
    g, h, i = node_hash(a, b), node_hash(c, dd), node_hash(e, f)
    k, l = node_hash(g, h), node_hash(i, j)  # noqa: E741 - the RFC's name
    nodes = {"a": a, "b": b, "c": c, "d": dd, "e": e, "f": f, "j": j, "g": g, "h": h, "i": i,
             "k": k, "l": l, "hash": node_hash(k, l)}
    return [a, b, c, dd, e, f, j], nodes


@pytest.mark.parametrize("index, names", [(0, "b h l"), (3, "c g l"), (4, "f j k"), (6, "i k")])
def test_inclusion_paths_of_the_rfc_example(index: int, names: str) -> None:
    leaves, n = _rfc_example()
    assert root(leaves) == n["hash"]
    path = inclusion_path(index, leaves)
    assert path == [n[x] for x in names.split()]
    assert verify_inclusion(index, 7, leaves[index], path, n["hash"])


@pytest.mark.parametrize("old, names", [(3, "c d g l"), (4, "l"), (6, "i j k")])
def test_consistency_proofs_of_the_rfc_example(old: int, names: str) -> None:
    leaves, n = _rfc_example()
    proof = consistency_proof(old, leaves)
    assert proof == [n[x] for x in names.split()]
    assert verify_consistency(old, 7, root(leaves[:old]), n["hash"], proof)


def _flip(value: bytes, bit: int = 0) -> bytes:
    return bytes([value[0] ^ (1 << bit)]) + value[1:]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 13, 16, 33])
def test_every_inclusion_proof_verifies_and_every_mutation_fails(size: int) -> None:
    leaves = [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(size)]
    tree_root = root(leaves)
    for index in range(size):
        path = inclusion_path(index, leaves)
        assert verify_inclusion(index, size, leaves[index], path, tree_root)
        if size > 1:
            assert not verify_inclusion((index + 1) % size, size, leaves[index], path, tree_root)
        assert not verify_inclusion(index, size, _flip(leaves[index]), path, tree_root)
        assert not verify_inclusion(index, size, leaves[index], path, _flip(tree_root, 7))
        for at in range(len(path)):
            flipped = [*path[:at], _flip(path[at], 3), *path[at + 1:]]
            assert not verify_inclusion(index, size, leaves[index], flipped, tree_root)
        assert not verify_inclusion(index, size, leaves[index], [*path, tree_root], tree_root)
        if path:
            assert not verify_inclusion(index, size, leaves[index], path[:-1], tree_root)


@pytest.mark.parametrize("size", [2, 3, 7, 8, 9, 16, 21])
def test_every_consistency_proof_verifies_and_every_mutation_fails(size: int) -> None:
    leaves = [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(size)]
    roots = [root(leaves[:m]) for m in range(size + 1)]
    for old, new in itertools.combinations(range(1, size + 1), 2):
        proof = consistency_proof(old, leaves[:new])
        assert verify_consistency(old, new, roots[old], roots[new], proof)
        assert not verify_consistency(old, new, _flip(roots[old]), roots[new], proof)
        assert not verify_consistency(old, new, roots[old], _flip(roots[new]), proof)
        if old + 1 < new:
            assert not verify_consistency(old + 1, new, roots[old], roots[new], proof)
        for at in range(len(proof)):
            flipped = [*proof[:at], _flip(proof[at], 5), *proof[at + 1:]]
            assert not verify_consistency(old, new, roots[old], roots[new], flipped)
        assert not verify_consistency(old, new, roots[old], roots[new], proof[:-1])
    assert verify_consistency(size, size, roots[size], roots[size], [])
    assert not verify_consistency(size, size, roots[size], _flip(roots[size]), [])


def test_a_frontier_continues_where_it_left_off() -> None:
    leaves = [leaf_hash(bytes([i]) * 32) for i in range(100)]
    frontier = Frontier()
    for size, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.root() == root(leaves[:size])
        resumed = Frontier(frontier.size, frontier.hashes)
        assert resumed.root() == frontier.root()
    with pytest.raises(ValueError):
        Frontier(3, [leaves[0]])
