module hashd/tests/nomad/nomad-template

go 1.19
