package config

// authKeys are the keys of the authentication chain (auth.*); titles for their documentation groups go in
// authGroupTitles.
var authKeys = []Key{}

// authGroupTitles names the documentation groups of authKeys.
var authGroupTitles = map[string]string{}
