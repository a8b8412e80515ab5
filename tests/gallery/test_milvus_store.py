"""What only the Milvus backend has: its location syntax. The gallery contract itself runs on
milvus-lite in test_store_contract.py (pointing the same code at a Milvus server only
changes the location string; milvus-lite needs `pip install -r requirements-milvus.txt`).
"""

import pytest

from tfface.gallery import milvus_store


def test_parse_location(tmp_path):
    assert milvus_store.parse_location("milvus://db:19530/people") == ("http://db:19530", "people")
    assert milvus_store.parse_location("https://h:443/p") == ("https://h:443", "p")
    uri, coll = milvus_store.parse_location(f"milvus-lite:{tmp_path}/x/y.db")
    assert uri == f"{tmp_path}/x/y.db" and coll == "tfface_gallery"
    assert not (tmp_path / "x").exists(), "parsing a location creates nothing"
    with pytest.raises(ValueError, match="COLLECTION"):
        milvus_store.parse_location("milvus://db:19530")
    with pytest.raises(ValueError, match=r"\.db"):
        milvus_store.parse_location("milvus-lite:/tmp/x")
    with pytest.raises(ValueError, match="collection name"):
        milvus_store.parse_location("milvus://db:19530/bad-name;drop")
