from kinds import config


class TestMode:
    def test_1_default_is_modern(self):
        assert config.MODE in ("modern", "legacy")

    def test_2_switches_to_legacy(self):
        # Leaves the module switched: a test that forgets to restore global state.
        assert config.switch("legacy") == "legacy"

    def test_3_unrelated(self):
        assert "modern".upper() == "MODERN"

    def test_4_mode_is_modern(self):
        assert config.MODE == "modern"
