// Parses HCL2 files with HashiCorp's own parser (hcl/v2, compiled to WebAssembly in npm's
// @cdktf/hcl2json) and prints them as JSON: blocks become objects keyed by type and label
// holding lists, attributes keep their literal values, and expressions keep their source
// text as "${...}" strings.
//
//     node tests/nomad/hcl2json.js FILE.hcl          the JSON; a syntax error exits 1 with the
//                                                    parser's message (file:line,col) on stderr
//     node tests/nomad/hcl2json.js --many FILE...    {"FILE": {"json": ...} | {"error": "..."}}
//                                                    (one process for many files: loading the
//                                                    WebAssembly parser takes seconds)
"use strict";
const fs = require("fs");
const { parse } = require("@cdktf/hcl2json");

async function parseFile(file) {
    try {
        return { json: await parse(file, fs.readFileSync(file, "utf8")) };
    } catch (error) {
        return { error: String(error.message || error) };
    }
}

async function main(args) {
    if (args[0] === "--many") {
        const out = {};
        for (const file of args.slice(1)) out[file] = await parseFile(file);
        process.stdout.write(JSON.stringify(out) + "\n");
        return 0;
    }
    if (args.length !== 1) {
        console.error("usage: hcl2json.js FILE.hcl | --many FILE...");
        return 2;
    }
    const result = await parseFile(args[0]);
    if (result.error) {
        console.error(result.error);
        return 1;
    }
    process.stdout.write(JSON.stringify(result.json) + "\n");
    return 0;
}

// exitCode, not exit(): exit() would cut a large output still flowing into a pipe.
main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
});
