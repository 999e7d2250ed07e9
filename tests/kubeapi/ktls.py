"""TLS material for the local API server, made with the openssl CLI (the
Python standard library cannot create certificates), and the kubeconfig."""

import base64
import os
import ssl
import subprocess

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _run(args, cwd):
    subprocess.run(["openssl"] + args, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(d, name, cn):
    """Self-signed CA name.crt / name.key in directory d."""
    _run(["req", "-x509"] + EC + ["-keyout", name + ".key", "-out", name + ".crt",
                                  "-days", "3650", "-subj", "/CN=" + cn,
                                  "-addext", "basicConstraints=critical,CA:TRUE",
                                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)


def make_leaf(d, name, ca, subj, ext):
    """name.crt / name.key signed by CA ca, with the given v3 extensions."""
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext)
    _run(["req"] + EC + ["-keyout", name + ".key", "-out", name + ".csr", "-subj", subj], d)
    _run(["x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
          "-CAcreateserial", "-out", name + ".crt", "-days", "3650",
          "-extfile", name + ".ext"], d)


def ensure_material(d):
    """Creates (once) ca.crt, server.crt/key, client-ca.crt, client.crt/key in d."""
    os.makedirs(d, exist_ok=True)
    if not os.path.exists(os.path.join(d, "server.crt")):
        make_ca(d, "ca", "kubeapi-local-ca")
        make_leaf(d, "server", "ca", "/CN=kube-apiserver",
                  "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                  "keyUsage=critical,digitalSignature,keyEncipherment\n"
                  "extendedKeyUsage=serverAuth\n")
    if not os.path.exists(os.path.join(d, "client.crt")):
        make_ca(d, "client-ca", "kubeapi-local-client-ca")
        make_leaf(d, "client", "client-ca", "/O=system:masters/CN=test-user",
                  "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                  "extendedKeyUsage=clientAuth\n")


def server_context(d):
    """An SSL context serving server.crt that accepts (optional) client certs of the
    client CA; returns (context, CA PEM bytes)."""
    ensure_material(d)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
    ctx.load_verify_locations(os.path.join(d, "client-ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    with open(os.path.join(d, "ca.crt"), "rb") as f:
        return ctx, f.read()


def kubeconfig(url, ca_pem, token):
    cluster = "    server: %s\n" % url
    if ca_pem:
        cluster += "    certificate-authority-data: %s\n" % base64.b64encode(ca_pem).decode()
    return ("apiVersion: v1\nkind: Config\nclusters:\n- name: kubeapi-local\n  cluster:\n" +
            cluster +
            "contexts:\n- name: kubeapi-local\n  context:\n    cluster: kubeapi-local\n"
            "    user: test-user\n    namespace: default\n"
            "current-context: kubeapi-local\n"
            "users:\n- name: test-user\n  user:\n    token: %s\npreferences: {}\n" % token)
