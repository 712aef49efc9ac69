// Flex Consumption plan and the Python 3.11 function app with a system-assigned identity.
// App settings are applied separately (modules/appsettings.bicep) once the identity has its roles.
// Shape follows Microsoft's Flex Consumption quickstart template
// (Azure/azure-quickstart-templates, quickstarts/microsoft.web/function-app-flex-managed-identities);
// types: https://learn.microsoft.com/azure/templates/microsoft.web/2024-04-01/sites

param location string
param tags object
param name string
param planName string

@description('https://<account>.blob.core.windows.net/<container> that holds the deployed package.')
param deploymentContainerUrl string

@allowed([2048, 4096])
param instanceMemoryMB int

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          // The app's own identity reads the package; it holds Storage Blob Data Owner on the account.
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output name string = app.name
output principalId string = app.identity.principalId
