package webhook

import (
	"reflect"
	"testing"
)

// TestEachRun: eachRun hands over each run of equal keys once, whole and
// in order, and nothing for an empty slice.
func TestEachRun(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want [][]int
	}{
		{nil, nil},
		{[]int{7}, [][]int{{7}}},
		{[]int{1, 1, 2, 2, 2, 1}, [][]int{{1, 1}, {2, 2, 2}, {1}}},
		{[]int{3, 4, 5}, [][]int{{3}, {4}, {5}}},
	} {
		var got [][]int
		eachRun(tc.in, func(v *int) int { return *v }, func(run []int) { got = append(got, run) })
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("eachRun(%v): %v, want %v", tc.in, got, tc.want)
		}
	}
}
