package config

import (
	"bytes"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite deploy/mqgate.conf from the schema")

// deployConf is the documented config file, relative to this package.
const deployConf = "../deploy/mqgate.conf"

// instanceName fills the wildcard segments of a pattern key with an example
// instance, so that the key can be read from a Config.
func instanceName(name string) string {
	segs := splitName(name)
	for i, s := range segs {
		switch segClass(s) {
		case segTail:
			segs[i] = "example.1"
		case segName:
			segs[i] = "external"
		}
	}
	return strings.Join(segs, ".")
}

func TestDeployConfIsGenerated(t *testing.T) {
	var want bytes.Buffer
	if err := WriteDocs(&want); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(deployConf, want.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(deployConf)
	if err != nil {
		t.Fatalf("%v; generate it with: go test ./config -run TestDeployConfIsGenerated -update", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("deploy/mqgate.conf differs from the schema; regenerate it with: go test ./config -run TestDeployConfIsGenerated -update")
	}
}

func TestDeployConfListsEveryKey(t *testing.T) {
	data, err := os.ReadFile(deployConf)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for _, k := range Schema {
		want := k.Name + " ="
		if strings.Contains(k.Name, "<") {
			want = "# " + want
		}
		found := slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, want) })
		if !found {
			t.Errorf("deploy/mqgate.conf has no line %q...", want)
		}
	}
}

func TestDeployConfLoadsToDefaults(t *testing.T) {
	got, err := Load(deployConf, nil)
	if err != nil {
		t.Fatalf("Load(%s): %v", deployConf, err)
	}
	def, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Schema {
		key := instanceName(k.Name)
		if g, w := got.String(key), def.String(key); g != w {
			t.Errorf("%s = %q in deploy/mqgate.conf, default %q", key, g, w)
		}
		if !strings.Contains(k.Name, "<") && !strings.HasPrefix(got.Source(key), deployConf+":") {
			t.Errorf("%s: source %q, want a line of %s", key, got.Source(key), deployConf)
		}
	}
	if g, w := got.Instances("listener.tcp.<name>"), def.Instances("listener.tcp.<name>"); !slices.Equal(g, w) {
		t.Errorf("listener instances %v, defaults %v", g, w)
	}
}
