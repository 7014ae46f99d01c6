package goroutine

import (
	"context"
	"runtime/pprof"
	"slices"
	"testing"
	"time"
)

func parked(release <-chan struct{}) { <-release }

func unlabelledParked(release <-chan struct{}) { <-release }

func TestLabels(t *testing.T) {
	release := make(chan struct{})
	done := make(chan struct{}, 2)
	go pprof.Do(context.Background(), pprof.Labels("room", "test"), func(context.Context) {
		parked(release)
		done <- struct{}{}
	})
	go func() {
		unlabelledParked(release)
		done <- struct{}{}
	}()
	defer func() {
		close(release)
		<-done
		<-done
	}()
	got, err := Labels("goroutine.parked", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{`{"room":"test"}`}) {
		t.Fatalf("labels %q, want the one goroutine's {\"room\":\"test\"}", got)
	}
	got, err = Labels("goroutine.unlabelledParked", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{""}) {
		t.Fatalf("labels %q, want none", got)
	}
	if _, err := Labels("goroutine.nowhere", 10*time.Millisecond); err == nil {
		t.Fatal("a function no goroutine runs: no error")
	}
}
