// chart-render renders a Helm chart the way `helm template` does, for the parts of Helm that
// charts/docketops-ledger uses: Chart.yaml, values.yaml with -f and --set overrides, the built-in
// objects (.Values, .Release, .Chart, .Capabilities, .Template), text/template with sprig's functions
// and Helm's own (include, tpl, required, toYaml, fromYaml, toJson, fromJson, lookup). Templates named
// _*.tpl only define; NOTES.txt is rendered but not printed (see --notes). A failing template (`fail`, `required`) exits 1 with its
// message on stderr.
//
// Helm cannot be installed here (no Go module proxy, no prebuilt downloads), so the chart's tests use
// this renderer; it builds offline with Debian's Go and its packages (scripts/ensure-chart-tools).
//
//	chart-render [--name RELEASE] [--namespace NS] [-f VALUES.yaml]... [--set KEY=VALUE]...
//	             [--set-string KEY=VALUE]... [--output yaml|json] [--upgrade] [--notes] CHART_DIR
//
// --notes prints the rendered NOTES.txt (what `helm install` shows) instead of the manifests.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"github.com/ghodss/yaml"
)

// chartMetadata holds the fields of Chart.yaml, named as Helm exposes them in .Chart.
type chartMetadata struct {
	APIVersion  string            `json:"apiVersion"`
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	AppVersion  string            `json:"appVersion"`
	KubeVersion string            `json:"kubeVersion"`
	Description string            `json:"description"`
	Type        string            `json:"type"`
	Home        string            `json:"home"`
	Sources     []string          `json:"sources"`
	Keywords    []string          `json:"keywords"`
	Annotations map[string]string `json:"annotations"`
}

type release struct {
	Name      string
	Namespace string
	Service   string
	Revision  int
	IsInstall bool
	IsUpgrade bool
}

// apiVersions answers .Capabilities.APIVersions.Has "group/version" (and "group/version/Kind").
type apiVersions []string

func (a apiVersions) Has(version string) bool {
	for _, v := range a {
		if v == version || strings.HasPrefix(version, v+"/") {
			return true
		}
	}
	return false
}

type kubeVersion struct {
	Version    string
	Major      string
	Minor      string
	GitVersion string
}

func (k kubeVersion) String() string { return k.Version }

type capabilities struct {
	KubeVersion kubeVersion
	APIVersions apiVersions
}

// The API versions of a Kubernetes 1.20 API server (the one the tests run against), enough for Has.
var defaultAPIVersions = apiVersions{
	"v1", "apps/v1", "batch/v1", "batch/v1beta1", "autoscaling/v1", "autoscaling/v2beta2",
	"networking.k8s.io/v1", "policy/v1beta1", "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1",
	"authentication.k8s.io/v1", "authorization.k8s.io/v1", "coordination.k8s.io/v1",
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	err := run(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", cleanError(err))
		os.Exit(1)
	}
}

var (
	firstLocation = regexp.MustCompile(`^template: ([^ ]+:\d+:\d+): `)
	calledFail    = regexp.MustCompile(`error calling (?:fail|required): ([\s\S]*)$`)
)

// cleanError shortens a `fail` or `required` error the way Helm does: the template's location and
// the message, without text/template's nested call chain.
func cleanError(err error) string {
	text := err.Error()
	message := calledFail.FindStringSubmatch(text)
	location := firstLocation.FindStringSubmatch(text)
	if message == nil || location == nil {
		return text
	}
	return fmt.Sprintf("execution error at (%s): %s", location[1], message[1])
}

func run(args []string) error {
	flags := flag.NewFlagSet("chart-render", flag.ContinueOnError)
	name := flags.String("name", "release-name", "release name (.Release.Name)")
	namespace := flags.String("namespace", "default", "release namespace (.Release.Namespace)")
	output := flags.String("output", "yaml", "yaml (a multi-document stream) or json (a list of objects)")
	upgrade := flags.Bool("upgrade", false, "render as an upgrade (.Release.IsUpgrade) instead of an install")
	notes := flags.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	kubeVer := flags.String("kube-version", "v1.20.2", "Kubernetes version for .Capabilities.KubeVersion")
	var valueFiles, sets, setStrings, extraAPIs listFlag
	flags.Var(&valueFiles, "f", "a values file (repeatable; later files win)")
	flags.Var(&valueFiles, "values", "same as -f")
	flags.Var(&sets, "set", "KEY=VALUE[,KEY=VALUE] (repeatable; typed like helm: ints, true/false, null)")
	flags.Var(&setStrings, "set-string", "KEY=VALUE[,KEY=VALUE], always strings")
	flags.Var(&extraAPIs, "api-versions", "an extra API version for .Capabilities.APIVersions (repeatable)")
	// Flags may come before and after the chart directory.
	var positional []string
	for {
		if err := flags.Parse(args); err != nil {
			return err
		}
		if flags.NArg() == 0 {
			break
		}
		positional = append(positional, flags.Arg(0))
		args = flags.Args()[1:]
	}
	if len(positional) != 1 {
		return errors.New("usage: chart-render [flags] CHART_DIR (see -h)")
	}
	if *output != "yaml" && *output != "json" {
		return fmt.Errorf("--output must be yaml or json, not %q", *output)
	}
	chartDir := positional[0]

	var meta chartMetadata
	if err := readYAML(filepath.Join(chartDir, "Chart.yaml"), &meta); err != nil {
		return err
	}
	if meta.Name == "" || meta.Version == "" {
		return errors.New("Chart.yaml: name and version are required")
	}
	values := map[string]interface{}{}
	if err := readYAML(filepath.Join(chartDir, "values.yaml"), &values); err != nil && !os.IsNotExist(errors.Unwrap(err)) {
		return err
	}
	overrides := map[string]interface{}{}
	for _, file := range valueFiles {
		fileValues := map[string]interface{}{}
		if err := readYAML(file, &fileValues); err != nil {
			return err
		}
		overrides = mergeValues(overrides, fileValues)
	}
	for _, s := range sets {
		if err := parseSet(s, overrides, false); err != nil {
			return fmt.Errorf("--set %s: %w", s, err)
		}
	}
	for _, s := range setStrings {
		if err := parseSet(s, overrides, true); err != nil {
			return fmt.Errorf("--set-string %s: %w", s, err)
		}
	}
	values = mergeValues(values, overrides)

	version := strings.TrimPrefix(*kubeVer, "v")
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return fmt.Errorf("--kube-version %q is not vMAJOR.MINOR[.PATCH]", *kubeVer)
	}
	top := map[string]interface{}{
		"Values": values,
		"Chart":  meta,
		"Release": release{
			Name: *name, Namespace: *namespace, Service: "Helm", Revision: 1,
			IsInstall: !*upgrade, IsUpgrade: *upgrade,
		},
		"Capabilities": capabilities{
			KubeVersion: kubeVersion{Version: "v" + version, Major: parts[0], Minor: parts[1], GitVersion: "v" + version},
			APIVersions: append(append(apiVersions{}, defaultAPIVersions...), extraAPIs...),
		},
	}
	docs, notesText, err := render(chartDir, meta.Name, top)
	if err != nil {
		return err
	}
	if *notes {
		_, err = fmt.Print(notesText)
		return err
	}
	return write(docs, *output)
}

func readYAML(path string, into interface{}) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// mergeValues returns base with override laid over it as Helm coalesces values: maps merge key by key,
// anything else replaces, and null deletes the key.
func mergeValues(base, override map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		if v == nil {
			delete(out, k)
			continue
		}
		baseMap, baseIsMap := out[k].(map[string]interface{})
		overMap, overIsMap := v.(map[string]interface{})
		if baseIsMap && overIsMap {
			out[k] = mergeValues(baseMap, overMap)
		} else {
			out[k] = v
		}
	}
	return out
}

// parseSet applies one --set argument: comma-separated KEY=VALUE pairs, KEY a dotted path where a part
// may end in [N] (a list index), VALUE a scalar or {a,b} (a list). `\,` and `\.` escape.
func parseSet(arg string, into map[string]interface{}, asString bool) error {
	for _, pair := range splitUnescaped(arg, ',', true) {
		eq := strings.Index(pair, "=")
		if eq < 0 {
			return fmt.Errorf("%q is not KEY=VALUE", pair)
		}
		key, raw := pair[:eq], pair[eq+1:]
		var value interface{}
		if strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
			list := []interface{}{}
			if inner := raw[1 : len(raw)-1]; inner != "" {
				for _, item := range splitUnescaped(inner, ',', false) {
					list = append(list, typed(unescape(item), asString))
				}
			}
			value = list
		} else {
			value = typed(unescape(raw), asString)
		}
		if err := setPath(into, splitUnescaped(key, '.', false), value); err != nil {
			return err
		}
	}
	return nil
}

// splitUnescaped splits on sep where it is not escaped with a backslash (and, for pairs, not in braces).
func splitUnescaped(s string, sep rune, skipBraces bool) []string {
	var parts []string
	var current strings.Builder
	depth, escaped := 0, false
	for _, r := range s {
		switch {
		case escaped:
			current.WriteRune('\\')
			current.WriteRune(r)
			escaped = false
			continue
		case r == '\\':
			escaped = true
			continue
		case skipBraces && r == '{':
			depth++
		case skipBraces && r == '}':
			depth--
		case r == sep && depth == 0:
			parts = append(parts, current.String())
			current.Reset()
			continue
		}
		current.WriteRune(r)
	}
	return append(parts, current.String())
}

func unescape(s string) string {
	return regexp.MustCompile(`\\(.)`).ReplaceAllString(s, "$1")
}

// typed gives a --set value Helm's type: null, true/false, an int64, or else the string.
func typed(s string, asString bool) interface{} {
	if asString {
		return s
	}
	switch s {
	case "null":
		return nil
	case "true":
		return true
	case "false":
		return false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil && (s == "0" || !strings.HasPrefix(s, "0")) {
		return i
	}
	return s
}

var indexed = regexp.MustCompile(`^(.*)\[(\d+)\]$`)

// setPath sets value at the dotted path, creating maps (and lists for name[N]) on the way.
func setPath(into map[string]interface{}, path []string, value interface{}) error {
	key := unescape(path[0])
	last := len(path) == 1
	if m := indexed.FindStringSubmatch(path[0]); m != nil {
		key = unescape(m[1])
		index, _ := strconv.Atoi(m[2])
		list, _ := into[key].([]interface{})
		for len(list) <= index {
			list = append(list, nil)
		}
		if last {
			list[index] = value
		} else {
			child, ok := list[index].(map[string]interface{})
			if !ok {
				child = map[string]interface{}{}
			}
			if err := setPath(child, path[1:], value); err != nil {
				return err
			}
			list[index] = child
		}
		into[key] = list
		return nil
	}
	if last {
		into[key] = value
		return nil
	}
	child, ok := into[key].(map[string]interface{})
	if !ok {
		child = map[string]interface{}{}
		into[key] = child
	}
	return setPath(child, path[1:], value)
}

// funcMap is sprig's text functions (less env access, which Helm removes too) plus Helm's own.
func funcMap(root *template.Template) template.FuncMap {
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	funcs["toYaml"] = func(v interface{}) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["fromYamlArray"] = func(s string) []interface{} {
		var a []interface{}
		if err := yaml.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	funcs["toJson"] = func(v interface{}) string {
		data, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(data)
	}
	funcs["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["fromJsonArray"] = func(s string) []interface{} {
		var a []interface{}
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	funcs["required"] = func(message string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(message)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(message)
		}
		return v, nil
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var out bytes.Buffer
		err := root.ExecuteTemplate(&out, name, data)
		return out.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var out bytes.Buffer
		err = t.Execute(&out, data)
		return strings.ReplaceAll(out.String(), "<no value>", ""), err
	}
	// Like `helm template`: there is no cluster to look objects up in.
	funcs["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	return funcs
}

type document struct {
	source string
	kind   string
	text   string
}

// render executes every template of the chart (all parsed into one set, so every define is visible
// everywhere) and returns the documents in Helm's install order, and the rendered NOTES.txt.
func render(chartDir, chartName string, top map[string]interface{}) ([]document, string, error) {
	var files []string
	templatesDir := filepath.Join(chartDir, "templates")
	err := filepath.Walk(templatesDir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		return nil, "", err
	}
	sort.Strings(files)
	root := template.New("chart").Option("missingkey=zero")
	root.Funcs(funcMap(root))
	names := map[string]string{}
	for _, file := range files {
		rel, _ := filepath.Rel(chartDir, file)
		name := chartName + "/" + filepath.ToSlash(rel)
		text, err := os.ReadFile(file)
		if err != nil {
			return nil, "", err
		}
		if _, err := root.New(name).Parse(string(text)); err != nil {
			return nil, "", err
		}
		names[file] = name
	}
	var docs []document
	var notes string
	separator := regexp.MustCompile(`(?m)^---[ \t]*$`)
	for _, file := range files {
		base := filepath.Base(file)
		if strings.HasPrefix(base, "_") {
			continue
		}
		name := names[file]
		data := map[string]interface{}{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = map[string]string{"Name": name, "BasePath": chartName + "/templates"}
		var out bytes.Buffer
		if err := root.ExecuteTemplate(&out, name, data); err != nil {
			return nil, "", err
		}
		text := strings.ReplaceAll(out.String(), "<no value>", "")
		if base == "NOTES.txt" {
			notes = text
			continue
		}
		for _, part := range separator.Split(text, -1) {
			var head struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(part), &head); err != nil {
				return nil, "", fmt.Errorf("%s renders invalid YAML: %v\n%s", name, err, part)
			}
			if strings.TrimSpace(stripComments(part)) == "" {
				continue
			}
			docs = append(docs, document{source: name, kind: head.Kind, text: strings.Trim(part, "\n")})
		}
	}
	sort.SliceStable(docs, func(i, j int) bool { return kindRank(docs[i].kind) < kindRank(docs[j].kind) })
	return docs, notes, nil
}

func stripComments(s string) string {
	var kept []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

// Helm's install order (releaseutil.InstallOrder); other kinds come last.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
	"PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
	"RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
}

func kindRank(kind string) int {
	for i, k := range installOrder {
		if k == kind {
			return i
		}
	}
	return len(installOrder)
}

func write(docs []document, output string) error {
	if output == "json" {
		list := []json.RawMessage{}
		for _, doc := range docs {
			data, err := yaml.YAMLToJSON([]byte(doc.text))
			if err != nil {
				return fmt.Errorf("%s: %v", doc.source, err)
			}
			list = append(list, data)
		}
		data, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Printf("%s\n", data)
		return err
	}
	for _, doc := range docs {
		if _, err := fmt.Printf("---\n# Source: %s\n%s\n", doc.source, doc.text); err != nil {
			return err
		}
	}
	return nil
}
