package offheap

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
)

type rec struct {
	off int64
	n   int32
	seg uint32
}

func TestMakeFree(t *testing.T) {
	before := InUse()
	s := Make[rec](4096)
	if len(s) != 4096 || cap(s) != 4096 {
		t.Fatalf("len %d cap %d", len(s), cap(s))
	}
	if got := InUse() - before; got != 4096*16 {
		t.Fatalf("InUse grew by %d, want %d", got, 4096*16)
	}
	for i := range s {
		if s[i] != (rec{}) {
			t.Fatalf("value %d not zero: %+v", i, s[i])
		}
		s[i] = rec{off: int64(i), n: int32(i), seg: 1}
	}
	runtime.GC() // the collector neither frees nor moves it
	for i := range s {
		if s[i].off != int64(i) {
			t.Fatalf("value %d changed: %+v", i, s[i])
		}
	}
	Free(s)
	if got := InUse(); got != before {
		t.Fatalf("InUse %d after Free, want %d", got, before)
	}
}

func TestMakeRefusesPointers(t *testing.T) {
	for name, mk := range map[string]func(){
		"pointer": func() { Make[*int](1) },
		"string":  func() { Make[string](1) },
		"struct with a slice": func() {
			Make[struct {
				a int
				b []byte
			}](1)
		},
		"array of maps": func() { Make[[2]map[int]int](1) },
		"no values":     func() { Make[rec](0) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(r.(string), "offheap: ") {
					t.Errorf("%s: recovered %v, want an offheap panic", name, r)
				}
			}()
			mk()
		}()
	}
}

func TestHasPointers(t *testing.T) {
	if hasPointers(reflect.TypeFor[[4]struct {
		a uint64
		b [3]float32
	}]()) {
		t.Error("plain values reported as pointers")
	}
	if !hasPointers(reflect.TypeFor[struct{ f func() }]()) {
		t.Error("a func not reported")
	}
}
