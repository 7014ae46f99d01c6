package topics_test

import (
	"fmt"

	"github.com/mqgate/mqgate/broker/topics"
)

// session stands for the broker's session, the owner of subscriptions.
type session struct{ id string }

func (s *session) ClientID() string { return s.id }
func (s *session) Connected() bool  { return true }

// A publication reaches every plain subscription that matches it and one
// member of each matching shared group; round robin takes the members in turn.
func ExampleIndex_Match() {
	ix := topics.NewIndex(topics.RoundRobin)
	ix.Subscribe(topics.Sub{Client: &session{"dashboard"}, Filter: "sensor/+/temp", QoS: 1})
	ix.Subscribe(topics.Sub{Client: &session{"worker-1"}, Filter: "sensor/#", Group: "workers"})
	ix.Subscribe(topics.Sub{Client: &session{"worker-2"}, Filter: "sensor/#", Group: "workers"})

	var dst []topics.Sub
	for range 2 {
		dst = ix.Match("sensor/42/temp", "probe-42", dst[:0])
		for _, s := range dst {
			if s.Shared() {
				fmt.Println(s.Client.ClientID(), s.Filter, "in group", s.Group)
			} else {
				fmt.Println(s.Client.ClientID(), s.Filter)
			}
		}
	}
	// Unordered output:
	// dashboard sensor/+/temp
	// worker-1 sensor/# in group workers
	// dashboard sensor/+/temp
	// worker-2 sensor/# in group workers
}

// Retained messages are found by topic filter.
func ExampleRetained_Match() {
	r := topics.NewRetained[string]()
	r.Set("sensor/1/temp", "21.5")
	r.Set("sensor/2/temp", "19.0")
	r.Set("sensor/2/humidity", "40")
	r.Set("$SYS/broker/uptime", "12")

	r.Match("sensor/+/temp", func(topic, m string) bool {
		fmt.Println(topic, m)
		return true
	})
	n := 0
	r.Match("#", func(string, string) bool { n++; return true })
	fmt.Println(n, "topics match #")
	// Unordered output:
	// sensor/1/temp 21.5
	// sensor/2/temp 19.0
	// 3 topics match #
}
