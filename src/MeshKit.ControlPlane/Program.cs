using MeshKit.ControlPlane;

var app = ControlPlaneApplication.Create(args);
app.Run();
