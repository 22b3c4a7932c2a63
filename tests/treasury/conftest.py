from __future__ import annotations

from pathlib import Path

import pytest

XSD = None


@pytest.fixture(scope="session")
def pain_xsd():
    """pain.001.001.03 XSD shipped inside the sepaxml package, loaded with xmlschema."""
    import sepaxml
    import xmlschema

    path = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.03.xsd"
    assert path.exists(), path
    return xmlschema.XMLSchema(str(path))
