# The Strata silo for CPU machines: `docker build -f docker/silo.Dockerfile -t strata-silo .` from the repository root.
# Flags and STRATA__* environment variables configure it (src/Strata.Hosting/StrataSiloHost.cs); the entrypoint adds
# --advertise with the container's own IP address (docker/silo-entrypoint.sh).

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the project files alone, so source edits do not invalidate the package layer.
# A new project under src/ needs a line here.
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Strata.Contracts/Strata.Contracts.csproj src/Strata.Contracts/
COPY src/Strata.Models/Strata.Models.csproj src/Strata.Models/
COPY src/Strata.Engine/Strata.Engine.csproj src/Strata.Engine/
COPY src/Strata.Grains/Strata.Grains.csproj src/Strata.Grains/
COPY src/Strata.Hosting/Strata.Hosting.csproj src/Strata.Hosting/
COPY silos/Strata.Silo/Strata.Silo.csproj silos/Strata.Silo/
RUN dotnet restore silos/Strata.Silo/Strata.Silo.csproj
COPY src/ src/
COPY silos/ silos/
RUN dotnet publish silos/Strata.Silo/Strata.Silo.csproj -c Release --no-restore -o /app \
 # The CPU image never loads the CUDA or TensorRT execution providers (--device cpu); they are ~300 MB.
 && rm -f /app/libonnxruntime_providers_cuda.so /app/libonnxruntime_providers_tensorrt.so

FROM mcr.microsoft.com/dotnet/runtime:10.0
WORKDIR /app
COPY --from=build /app ./
COPY docker/silo-entrypoint.sh /usr/local/bin/strata-silo
RUN chmod 755 /usr/local/bin/strata-silo && mkdir -p /models
ENV STRATA__Strata__ModelStore=/models
# 11111: silo-to-silo; 30000: client gateway (the defaults of --silo-port and --gateway-port).
EXPOSE 11111 30000
ENTRYPOINT ["strata-silo"]
CMD ["--device", "cpu"]
