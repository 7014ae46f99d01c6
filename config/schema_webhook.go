package config

// webhookKeys are the keys of the web hooks (web.hook.*); titles for their documentation groups go in
// webhookGroupTitles.
var webhookKeys = []Key{}

// webhookGroupTitles names the documentation groups of webhookKeys.
var webhookGroupTitles = map[string]string{}
