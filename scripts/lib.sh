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

# ensure_debian_packages: what the tests run for real that pip cannot provide: a PostgreSQL server
# (the store is tested on it) and Chromium (the panel is tested in it).
ensure_debian_packages() {
    missing=""
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
    [ -x /usr/bin/chromium ] || missing="$missing chromium"
    if [ -n "$missing" ]; then
        echo "== installing Debian packages:$missing =="
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
    fi
}
