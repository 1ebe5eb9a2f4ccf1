// Parses an HCL2 file with HashiCorp's own parser (hcl/v2, compiled to WebAssembly in npm's
// @cdktf/hcl2json) and prints it as JSON: blocks become objects keyed by type and label
// holding lists, attributes keep their literal values, and expressions keep their source
// text as "${...}" strings. A syntax error exits 1 with the parser's message (file, line,
// column) on stderr.
//
//     node tests/nomad/hcl2json.js FILE.hcl
"use strict";
const fs = require("fs");
const { parse } = require("@cdktf/hcl2json");

const file = process.argv[2];
if (!file) {
    console.error("usage: hcl2json.js FILE.hcl");
    process.exit(2);
}
parse(file, fs.readFileSync(file, "utf8")).then(
    (json) => process.stdout.write(JSON.stringify(json) + "\n"),
    (error) => {
        console.error(String(error.message || error));
        process.exit(1);
    },
);
