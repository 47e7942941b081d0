# Shared steps of scripts/demo and scripts/test (sourced, not run).
VENV="${ENVSHARE_VENV:-$PWD/.venv}"

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "== creating $VENV =="
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
    fi
}

# install_project EXTRA: the project (editable) with an extra, its labextension built by the
# build hook (node and npm come from the machine; JupyterLab's jlpm does the rest).
install_project() {
    echo "== installing jupyter_envshare[$1] =="
    "$VENV/bin/python" -m pip install --quiet --editable ".[$1]"
}
