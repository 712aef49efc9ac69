// Log Analytics workspace and workspace-based Application Insights for the function host's logs.
// Local (instrumentation-key) ingestion is off: the app sends with its identity, which needs
// Monitoring Metrics Publisher (modules/roles.bicep) and APPLICATIONINSIGHTS_AUTHENTICATION_STRING
// (https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication).

param location string
param tags object
param logAnalyticsName string
param appInsightsName string

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    retentionInDays: 30
    sku: {
      name: 'PerGB2018'
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

// The connection string names the resource and its ingestion endpoint; with local auth disabled
// it cannot be used to send telemetry without an Entra token.
output connectionString string = appInsights.properties.ConnectionString
output appInsightsName string = appInsights.name
