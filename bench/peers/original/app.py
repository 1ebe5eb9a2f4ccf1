"""The original password-hashing app that hashd replaces, rebuilt from its published description.

Flask, served by gunicorn (2 workers x 2 threads, gthread), Debian's python3-bcrypt. One route,
GET /gethash/<password>/, answering 200 application/json with the hex of the bcrypt setting string
and the hex of the full bcrypt hash:

    {"salt": salt.hex(), "hash": bcrypt.hashpw(password.encode("utf8"), salt).hex()}

The original always used bcrypt.gensalt(), i.e. cost 12. ORIGINAL_BCRYPT_ROUNDS exists only so
that the benchmark can compare it with hashd at cost 4 and 10 too; unset, it is the original.
Like the original, it has no input checks: a password over 72 bytes makes bcrypt raise (500).
"""

import os

import bcrypt
from flask import Flask, jsonify

app = Flask(__name__)

ROUNDS = int(os.environ.get("ORIGINAL_BCRYPT_ROUNDS", "12"))


@app.route("/gethash/<password>/")
def gethash(password):
    salt = bcrypt.gensalt(rounds=ROUNDS)
    hashed = bcrypt.hashpw(password.encode("utf8"), salt)
    return jsonify(salt=salt.hex(), hash=hashed.hex())
