"""jupyter_envshare tests."""
