// nomad-template renders Nomad `template` blocks the way a Nomad client does, for tests that
// cannot run Nomad (it is not packaged for Debian). Nomad renders templates with
// consul-template, which is Go's text/template plus functions; this program is Go's own
// text/template with the functions hashd's jobs use, implemented as consul-template documents
// them:
//
//	env "NAME"            the task's environment variable, "" when unset
//	nomadService "NAME"   the service's registrations in Nomad's catalogue: .ID .Name
//	                      .Namespace .Datacenter .NodeID .JobID .AllocID .Address .Port .Tags
//	nomadVar "PATH"       the items of a Nomad Variable; an item prints as its value. A
//	                      missing variable is an error here (Nomad would wait for it)
//	split SEP STRING      strings.Split, with "" giving no elements
//	join SEP LIST         strings.Join (`{{ .Tags | join "," }}`)
//
// Input (stdin, JSON): {"templates": [{"data", "left_delimiter", "right_delimiter"}],
// "env": {NAME: VALUE}, "services": {NAME: [registration]}, "variables": {PATH: {KEY: VALUE}}}.
// Output (stdout, JSON): the rendered texts in order. An unknown function, a syntax error or
// a missing key of a registration fails the whole run with exit status 1 and the reason on
// stderr, as the template would fail (or block) in Nomad.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
)

type templateBlock struct {
	Data           string `json:"data"`
	LeftDelimiter  string `json:"left_delimiter"`
	RightDelimiter string `json:"right_delimiter"`
}

// NomadService mirrors consul-template's dependency.NomadService.
type NomadService struct {
	ID         string
	Name       string
	Namespace  string
	Datacenter string
	NodeID     string
	JobID      string
	AllocID    string
	Address    string
	Port       int
	Tags       []string
}

// NomadVarItem prints as its value, like consul-template's.
type NomadVarItem struct {
	Key   string
	Value string
}

func (i NomadVarItem) String() string { return i.Value }

type request struct {
	Templates []templateBlock              `json:"templates"`
	Env       map[string]string            `json:"env"`
	Services  map[string][]NomadService    `json:"services"`
	Variables map[string]map[string]string `json:"variables"`
}

func functions(req *request) template.FuncMap {
	return template.FuncMap{
		"env": func(name string) string { return req.Env[name] },
		"nomadService": func(name string) []NomadService {
			return req.Services[name]
		},
		"nomadVar": func(path string) (map[string]NomadVarItem, error) {
			items, ok := req.Variables[path]
			if !ok {
				return nil, fmt.Errorf("nomadVar %q does not exist (Nomad would wait for it)", path)
			}
			out := make(map[string]NomadVarItem, len(items))
			for k, v := range items {
				out[k] = NomadVarItem{Key: k, Value: v}
			}
			return out, nil
		},
		"join": func(sep string, items []string) string { return strings.Join(items, sep) },
		"split": func(sep, s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, sep)
		},
	}
}

func render(req *request, block templateBlock) (string, error) {
	left, right := block.LeftDelimiter, block.RightDelimiter
	if left == "" {
		left = "{{"
	}
	if right == "" {
		right = "}}"
	}
	t, err := template.New("template").Delims(left, right).Funcs(functions(req)).
		Option("missingkey=error").Parse(block.Data)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := t.Execute(&out, nil); err != nil {
		return "", err
	}
	return out.String(), nil
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "nomad-template: reading the request:", err)
		os.Exit(1)
	}
	rendered := make([]string, 0, len(req.Templates))
	for i, block := range req.Templates {
		text, err := render(&req, block)
		if err != nil {
			fmt.Fprintf(os.Stderr, "nomad-template: template %d: %v\n", i, err)
			os.Exit(1)
		}
		rendered = append(rendered, text)
	}
	if err := json.NewEncoder(os.Stdout).Encode(rendered); err != nil {
		fmt.Fprintln(os.Stderr, "nomad-template:", err)
		os.Exit(1)
	}
}
