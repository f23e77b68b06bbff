# The strata command line (deploy, status, generate, synth, import, gateway, certs, ...): `docker build -f docker/client.Dockerfile
# -t strata .`, then e.g. `docker run --rm --network NET strata cluster status --redis redis:6379`.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the project files alone (see silo.Dockerfile).
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Strata.Contracts/Strata.Contracts.csproj src/Strata.Contracts/
COPY src/Strata.Models/Strata.Models.csproj src/Strata.Models/
COPY src/Strata.Engine/Strata.Engine.csproj src/Strata.Engine/
COPY src/Strata.Grains/Strata.Grains.csproj src/Strata.Grains/
COPY src/Strata.Hosting/Strata.Hosting.csproj src/Strata.Hosting/
COPY src/Strata.Client/Strata.Client.csproj src/Strata.Client/
COPY clients/Strata.Gateway/Strata.Gateway.csproj clients/Strata.Gateway/
COPY clients/Strata.Cli/Strata.Cli.csproj clients/Strata.Cli/
RUN dotnet restore clients/Strata.Cli/Strata.Cli.csproj
COPY src/ src/
COPY clients/ clients/
# The client generates on the CPU when asked to run locally; the GPU providers are left out (~300 MB).
RUN dotnet publish clients/Strata.Cli/Strata.Cli.csproj -c Release --no-restore -o /app \
 && rm -f /app/libonnxruntime_providers_cuda.so /app/libonnxruntime_providers_tensorrt.so

# The ASP.NET Core runtime: `strata gateway` serves the OpenAI API from this image.
FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app ./
RUN printf '#!/bin/sh\nexec dotnet /app/strata.dll "$@"\n' > /usr/local/bin/strata && chmod 755 /usr/local/bin/strata \
 && mkdir -p /models
ENTRYPOINT ["strata"]
CMD ["--help"]
