// Flex Consumption plan and the Python 3.13 function app with a system-assigned identity.
// App settings are applied separately (modules/appsettings.bicep) once the identity has its roles.
// Shape follows Microsoft's Flex Consumption quickstart template
// (Azure/azure-quickstart-templates, quickstarts/microsoft.web/function-app-flex-managed-identities);
// types: https://learn.microsoft.com/azure/templates/microsoft.web/2024-04-01/sites

param location string

@description('Tags of both resources (azd-env-name).')
param tags object

// Only the site carries the azd-service-name tag. azd up to 1.23.3 counts every resource with the tag and
// stops with "expecting only '1' resource tagged with 'azd-service-name: scoring', but found '2'" when the
// plan has it too (Azure/azure-dev, cli/azd/pkg/project/resource_manager.go at azure-dev-cli_1.23.3).
// Microsoft's Flex Consumption azd samples tag the site only, as here.
@description('azd service name from azure.yaml, put on the site as the azd-service-name tag.')
param serviceName string

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
  tags: union(tags, { 'azd-service-name': serviceName })
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
      // Flex Consumption runs Python 3.13 (https://learn.microsoft.com/azure/azure-functions/supported-languages).
      runtime: {
        name: 'python'
        version: '3.13'
      }
    }
  }
}

output name string = app.name
output principalId string = app.identity.principalId
