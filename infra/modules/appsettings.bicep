// The function app's application settings, as one resource so main.bicep can order it after the
// role assignments. A PUT of `appsettings` replaces the whole set: settings added by hand in the
// portal are removed on the next `azd provision`; add them to main.bicep instead.

param appName string

@description('Setting name to value; values are strings.')
param settings object

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: settings
}
